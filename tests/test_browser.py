"""The page in a real browser: Debian's chromium, driven by Playwright, draws with the mouse and a
finger.

CI installs chromium (.ci/run) and must run this test; it is skipped only where chromium is
absent and $CI is unset. With DIGITPAIR_SCREENSHOT=1 it refreshes docs/screenshot.png (1280 px
wide, the README's picture of the app) and docs/screenshot-phone.png (390 px); otherwise the
screenshots go to pytest's temporary folder, so a test run leaves the checkout as it was.
"""

import contextlib
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

CHROMIUM = Path("/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[1] / "docs"
DIGIT_HEADS = ["simple_cnn", "shared_aux", "unshared_aux"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Debian chromium not installed (apt-get install chromium)",
)

# Strokes in the unit square of the paper, as a person draws them.
TWO = [
    [
        (0.2, 0.3),
        (0.4, 0.12),
        (0.65, 0.15),
        (0.75, 0.35),
        (0.6, 0.55),
        (0.35, 0.75),
        (0.2, 0.88),
        (0.5, 0.88),
        (0.8, 0.88),
    ]
]
SEVEN = [[(0.2, 0.15), (0.8, 0.15), (0.6, 0.5), (0.45, 0.88)]]
# The same seven in two strokes, as many write it: its stem alone reads as a one.
STEM, BAR = [SEVEN[0][1:]], [SEVEN[0][:2]]
# Not digits: a dab of the brush, a scribble back and forth over a patch (as one scribbles out),
# and a letter K.
DOT = [[(0.5, 0.5), (0.51, 0.5)]]
SCRIBBLE = [[(0.2 + 0.6 * (i % 2), 0.25 + 0.05 * i) for i in range(10)]]
LETTER_K = [[(0.25, 0.15), (0.25, 0.85)], [(0.75, 0.15), (0.25, 0.55), (0.75, 0.85)]]
# Every visible text node: its colour over the backgrounds behind it (alpha and opacity blended),
# the WCAG contrast ratio, its font size. SVG text is coloured by its fill.
TEXTS = r"""() => {
    const parse = (s) => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null;
        const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
        return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
    const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3]));
    const luminance = (c) => { const [r, g, b] = c.map((v) => {
            v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    const background = (el) => { const layers = [];
        for (let e = el; e; e = e.parentElement) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
        return layers.reverse().reduce((below, c) => over(c, below), [255, 255, 255]); };
    const opacity = (el) => { let o = 1;
        for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
        return o; };
    const texts = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.trim(), el = node.parentElement, style = getComputedStyle(el);
        const range = document.createRange(); range.selectNodeContents(node);
        const rect = range.getBoundingClientRect();
        if (!text || rect.width === 0 || rect.height === 0) continue;
        if (style.visibility === "hidden") continue;
        const colour = parse(el instanceof SVGElement ? style.fill : style.color);
        const behind = background(el);
        const seen = over([...colour.slice(0, 3), colour[3] * opacity(el)], behind);
        const [a, b] = [luminance(seen), luminance(behind)];
        texts.push({text: text.slice(0, 40),
                    contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
                    size: parseFloat(style.fontSize)});
    }
    return texts;
}"""
# The words (and numbers) of the About tables' cells, and those the browser broke across lines. A
# word is what lies between spaces, across elements too: "(" + <code>name</code> + ")" is one, and
# a line break between its parts breaks it. Broken: two of its pieces on different lines, one
# starting below where another ends.
BROKEN_WORDS = r"""() => {
    const words = [], broken = [];
    for (const cell of document.querySelectorAll("#about td, #about th")) {
        const nodes = [], walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        let text = "";
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            nodes.push({node, start: text.length});
            text += node.textContent;
        }
        const at = (index) => {   // the text node and offset of the cell text's index-th character
            const n = nodes.findLast((n) => n.start <= index);
            return [n.node, index - n.start];
        };
        for (const match of text.matchAll(/\S+/g)) {
            const range = document.createRange();
            const [end, offset] = at(match.index + match[0].length - 1);
            range.setStart(...at(match.index));
            range.setEnd(end, offset + 1);
            const pieces = [...range.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
            const top = Math.max(...pieces.map((r) => r.top));
            const bottom = Math.min(...pieces.map((r) => r.bottom));
            words.push(match[0]);
            if (pieces.length > 1 && top >= bottom - 2) broken.push(match[0]);
        }
    }
    return {words: words.length, broken};
}"""


def whole_words(page) -> None:
    """No word or number of the About tables is broken across lines (and the tables were found)."""
    said = page.evaluate(BROKEN_WORDS)
    assert said["words"] > 40 and said["broken"] == [], said


def draw(page, elem_id: str, strokes) -> None:
    """Mouse strokes on a pad, as a person makes them: no tool is clicked first."""
    # The editor stacks two canvases of the same size; the paper is the square in their middle.
    box = page.locator(f"#{elem_id} canvas").first.bounding_box()
    side = 0.8 * min(box["width"], box["height"])
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    for stroke in strokes:
        page.mouse.move(left + stroke[0][0] * side, top + stroke[0][1] * side)
        page.mouse.down()
        for u, v in stroke[1:]:
            page.mouse.move(left + u * side, top + v * side, steps=1)
        page.mouse.up()


def touch_draw(page, cdp, elem_id: str, strokes) -> None:
    """The same strokes with a finger (Chrome DevTools touch events), on a phone-sized page."""
    box = page.locator(f"#{elem_id} canvas").first.bounding_box()
    side = 0.5 * min(box["width"], box["height"])  # the paper is smaller than the pad on a phone
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2

    def finger(u, v):
        return [{"x": left + u * side, "y": top + v * side, "id": 1}]

    for stroke in strokes:
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": finger(*stroke[0])}
        )
        for (u0, v0), (u1, v1) in zip(stroke, stroke[1:]):
            for k in range(1, 9):
                cdp.send(
                    "Input.dispatchTouchEvent",
                    {
                        "type": "touchMove",
                        "touchPoints": finger(u0 + k / 8 * (u1 - u0), v0 + k / 8 * (v1 - v0)),
                    },
                )
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def answered(page, timeout_ms: int = 20_000) -> None:
    """Wait for the page to answer for both boxes."""
    from playwright.sync_api import expect

    expect(page.locator("#consensus")).to_contain_text(
        re.compile("models agree|Split"), timeout=timeout_ms
    )


def ink(page, elem_id: str) -> int:
    """Dark pixels the pad shows. Read from a screenshot of the element: the pad draws with WebGL,
    which a 2D context can't read back."""
    shot = PIL.Image.open(
        io.BytesIO(page.locator(f"#{elem_id} canvas").first.screenshot())
    ).convert("L")
    return int((np.asarray(shot) < 100).sum())


def ink_until(page, elem_id: str, ok, timeout_s: float = 15.0) -> int:
    """The pad's ink once `ok(ink)` holds (or at the timeout): the WebGL canvas repaints some
    frames after the input, later on a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while not ok(value := ink(page, elem_id)) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    return value


def launch(p):
    return p.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )


def expect_cleared(page, expect) -> None:
    expect(page.locator("#consensus")).to_have_text("Draw a digit in both boxes.", timeout=20_000)
    expect(page.locator("#cards .card")).to_have_count(0)
    for box in ("first", "second"):
        expect(page.locator(f"#seen-{box} img")).to_have_count(0)
        assert ink_until(page, box, lambda v: v < 1000) < 1000, (
            box
        )  # only the toolbar's icons; a digit is thousands


def readable(page) -> None:
    """Every visible text on the page: contrast at least 4.5:1 (WCAG AA), at least 12 px."""
    texts = page.evaluate(TEXTS)
    assert len(texts) > 50  # the page's texts were found
    faint = [t for t in texts if t["contrast"] < 4.5 or t["size"] < 12]
    assert faint == [], faint


def open_about(page, expect) -> None:
    page.locator("#about").get_by_text("About").first.click()
    expect(page.locator("#about table").first).to_be_visible()


def expect_marked(page, expect) -> None:
    """Every card of an 8-and-3 example is marked, right where it says first > second."""
    cards = page.locator("#cards .card")
    expect(cards.locator(".mark")).to_have_count(cards.count())
    for i in range(cards.count()):
        verdict = cards.nth(i).locator(".verdict").inner_text()
        assert verdict.endswith("✓ right" if verdict.startswith("first > second") else "✗ wrong"), (
            verdict
        )


def probabilities(page) -> dict[str, str]:
    """{network: its card's 'P(first ≤ second) = ...'} as the page shows them."""
    cards = page.locator("#cards .card")
    return {
        cards.nth(i).get_attribute("id"): cards.nth(i).locator(".prob").inner_text()
        for i in range(cards.count())
    }


@contextlib.contextmanager
def desktop_page(url: str):
    """The app's page in a desktop-sized browser window, loaded and waiting for digits."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            expect(page.locator("#consensus")).to_have_text(
                "Draw a digit in both boxes.", timeout=20_000
            )
            yield page
        finally:
            browser.close()


def test_drawing_clearing_and_an_example(served_app, tmp_path):
    from playwright.sync_api import expect

    with desktop_page(served_app[1]) as page:
        blank = ink(page, "first")
        draw(page, "first", TWO)  # the brush is ready as the page loads: no tool clicked
        draw(page, "second", SEVEN)
        answered(page)
        assert all(
            ink_until(page, box, lambda v: v > blank + 3000) > blank + 3000
            for box in ("first", "second")
        )
        # No button pressed: the page answers as the person draws, one card per network.
        expect(page.locator("#consensus")).to_contain_text(
            re.compile("models agree|Split"), timeout=20_000
        )
        expect(page.locator("#cards .card")).to_have_count(len(served_app[0].SETS["ours"].models))
        for name in DIGIT_HEADS:
            card = page.locator(f"#card-{name}")
            expect(card.locator(".verdict")).to_have_text("first ≤ second")
            expect(card.locator(".reading")).to_contain_text(
                re.compile(r"reads first: 2 \(\d+%\), second: 7 \(\d+%\)")
            )
            expect(card.locator("svg.joint")).to_be_visible()
            expect(card.locator(".caption")).to_contain_text("blue: first ≤ second")
        for name in ("shared", "unshared"):
            # Weaker on their own; the page must still give them a verdict, whichever it is.
            card = page.locator(f"#card-{name}")
            expect(card.locator(".verdict")).to_have_text(re.compile("^first [≤>] second$"))
            expect(card.locator(".reading")).to_contain_text("never told what a digit is")
            expect(card.locator("svg")).to_have_count(0)
        for box in ("first", "second"):
            expect(page.locator(f"#seen-{box} img")).to_be_visible()
        open_about(page, expect)
        whole_words(page)
        readable(page)
        shot = (
            DOCS / "screenshot.png"
            if os.environ.get("DIGITPAIR_SCREENSHOT") == "1"
            else tmp_path / "screenshot.png"
        )
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        # Clear, draw again, clear again: each time both pads and the results empty, and the brush
        # is ready.
        page.get_by_role("button", name="Clear both").click()
        expect_cleared(page, expect)
        draw(page, "first", SEVEN)
        draw(page, "second", TWO)
        answered(page)
        expect(page.locator(f"#card-{DIGIT_HEADS[0]} .verdict")).to_have_text(
            "first > second", timeout=20_000
        )
        page.get_by_role("button", name="Clear both").click()
        expect_cleared(page, expect)

        # An example, on blank pads: when its answer shows, the pads already hold its digits, and
        # the click asked the server once. Its true digits and answer on the page, each verdict
        # marked.
        asked = []  # the server functions the page queued, by index
        page.on(
            "request",
            lambda r: "/queue/join" in r.url and asked.append(r.post_data_json["fn_index"]),
        )
        page.locator("#examples-row").get_by_role("button", name="8 and 3").click()
        expect(page.locator("#consensus")).to_contain_text(
            "Example 8 and 3: the answer is first > second", timeout=20_000
        )
        assert all(ink(page, box) > blank + 3000 for box in ("first", "second"))
        page.wait_for_timeout(1000)  # nothing else is asked for later
        # Besides the example's one request, only a drawing's request read before the Clear may
        # arrive late, on a loaded machine; the server answers it with no change (app.PAGE).
        fns = [event_fn(served_app[0], index) for index in asked]
        assert fns.count(served_app[0].show_example) == 1, fns
        assert set(fns) <= {served_app[0].show_example, served_app[0].show}, fns
        expect_marked(page, expect)
        assert page.locator("#consensus").bounding_box()["y"] < 900  # the answer is in view

        # The 2020 report's networks answer for the same two digits: nothing redrawn, the cards
        # switch.
        ours = probabilities(page)
        page.locator("#networks").get_by_text("The 2020 report's networks (FC head)").click()
        for name in ("shared", "shared_aux", "unshared", "unshared_aux"):
            expect(page.locator(f"#card-{name} .head")).to_contain_text(
                "FC head: one fully connected layer", timeout=20_000
            )
        expect(page.locator("#card-simple_cnn .head")).to_contain_text("no pair head")
        expect(page.locator("#card-shared_aux .head")).to_contain_text(
            "its verdict comes from that layer"
        )
        expect(page.locator("#consensus")).to_contain_text("Example 8 and 3")
        expect_marked(page, expect)
        report = probabilities(page)
        assert list(report) == list(ours) and report != ours  # other networks, other numbers
        page.locator("#networks").get_by_text("Our networks (order head)").click()
        expect(page.locator("#card-shared_aux .head")).to_contain_text("order head", timeout=20_000)
        assert probabilities(page) == ours


def test_a_letter_a_dot_and_a_scribble_are_not_digits(served_app):
    from playwright.sync_api import expect

    with desktop_page(served_app[1]) as page:
        for strokes in (LETTER_K, DOT, SCRIBBLE):
            draw(page, "first", TWO)
            draw(page, "second", strokes)
            expect(page.locator("#consensus")).to_contain_text(
                "The second drawing: not a digit. Read as digits anyway", timeout=20_000
            )
            for name in DIGIT_HEADS:
                expect(page.locator(f"#card-{name} .reading")).to_contain_text(
                    "second: not a digit?"
                )
                expect(page.locator(f"#card-{name} .prob")).to_contain_text(
                    "P(first ≤ second) = "
                )  # numbers stay
            for name in ("shared", "unshared"):
                expect(page.locator(f"#card-{name} .reading")).to_contain_text(
                    "the guard says the second drawing: not a digit"
                )
            page.get_by_role("button", name="Clear both").click()
            expect_cleared(page, expect)


def test_quick_hands_digit_after_digit_and_clear_at_once(served_app):
    """The second digit right after the first, Clear as soon as the page answers, five times: the
    page answers for both digits every time (the pads are read once they hold their strokes), and
    an answer for drawings read just before a Clear never lands after it."""
    from playwright.sync_api import expect

    with desktop_page(served_app[1]) as page:
        for _ in range(5):
            draw(page, "first", TWO)
            draw(page, "second", SEVEN)
            answered(page)
            expect(page.locator(f"#card-{DIGIT_HEADS[0]} .verdict")).to_have_text("first ≤ second")
            page.get_by_role("button", name="Clear both").click()
            expect_cleared(page, expect)
            page.wait_for_timeout(500)  # nothing late arrives after the clearing
            expect(page.locator("#consensus")).to_have_text("Draw a digit in both boxes.")
            expect(page.locator("#cards .card")).to_have_count(0)


def event_fn(app, index):
    """The function the app's event `index` runs (a functools.partial unwrapped)."""
    event = app.demo.fns[index]
    return getattr(event.fn, "func", event.fn)


def asks_for(route, app, fn) -> bool:
    """Whether a request to join the queue asks for the app's event that runs `fn`."""
    index = (route.request.post_data_json or {}).get("fn_index")
    return index in app.demo.fns and event_fn(app, index) is fn


def held_answers(app, page, first_only: bool = False) -> list:
    """Hold up the replies to the page's requests for a drawing's answer, as a loaded machine does
    (gradio's client holds an answer until the reply to its request to join the queue has come):
    the server answers, the browser does not hear it. Returns the list the held (route, reply)
    pairs are added to, to be fulfilled by the test; `first_only`: hold only the first."""
    held = []

    def hold(route):
        if asks_for(route, app, app.show) and not (first_only and held):
            held.append((route, route.fetch()))
        else:
            route.continue_()

    page.route("**/queue/join*", hold)
    return held


def wait_for(page, held: list) -> None:
    """Until the page has made a request held in `held`, at most 10 s."""
    for _ in range(200):
        if held:
            return
        page.wait_for_timeout(50)
    raise AssertionError("the page made no such request")


def test_a_stroke_drawn_while_an_answer_is_on_its_way_is_answered_too(served_app):
    """A seven's stem, then its bar while the stem's answer is held up on the way: once that lands,
    the page answers for the whole seven, not for the one the stem alone reads as."""
    from playwright.sync_api import expect

    with desktop_page(served_app[1]) as page:
        draw(page, "first", TWO)
        page.wait_for_timeout(1000)  # the first box's answer (asking for a second digit) landed
        held = held_answers(served_app[0], page, first_only=True)
        draw(page, "second", STEM)
        wait_for(page, held)
        draw(page, "second", BAR)
        page.wait_for_timeout(1000)
        for route, reply in held:
            route.fulfill(response=reply)
        for name in DIGIT_HEADS:
            expect(page.locator(f"#card-{name} .reading")).to_contain_text(
                re.compile(r"second: 7 \(\d+%\)"), timeout=20_000
            )
            expect(page.locator(f"#card-{name} .verdict")).to_have_text("first ≤ second")


def test_an_answer_held_up_on_its_way_lands_before_a_clear_not_after(served_app):
    """A drawing's answer whose reply is held up on the way, as on a loaded machine (gradio's client
    holds an answer until the reply to its request to join the queue has come), and Clear pressed
    meanwhile: the answer lands first, the Clear after it, and the page ends cleared."""
    from playwright.sync_api import expect

    with desktop_page(served_app[1]) as page:
        draw(page, "first", TWO)
        draw(page, "second", SEVEN)
        answered(page)
        held = held_answers(served_app[0], page)
        draw(page, "first", SEVEN)
        wait_for(page, held)
        page.get_by_role("button", name="Clear both").click()
        page.wait_for_timeout(1500)
        for route, reply in held:
            route.fulfill(response=reply)
        page.unroute("**/queue/join*")
        expect_cleared(page, expect)
        page.wait_for_timeout(1000)  # nothing lands later
        expect(page.locator("#consensus")).to_have_text("Draw a digit in both boxes.")
        expect(page.locator("#cards .card")).to_have_count(0)


# The page's next drawing answer is asked for only once a Clear or an example has begun to set the
# pads, as when gradio is slow to read the pads on a loaded machine; `window.digitpair.waiting` says
# the answer has been held.
ASKED_AFTER_CLEAR_BEGINS = """() => {
    const page = window.digitpair, sending = page.sending;
    page.sending = async (inputs, generation) => {
        page.sending = sending;
        page.waiting = true;
        while (!page.quiet) await new Promise((done) => setTimeout(done, 0));
        return sending(inputs, generation);
    };
}"""


def test_a_drawing_read_as_a_clear_begins_never_lands_after_it(served_app):
    """A stroke's answer asked for only once Clear has begun (the pads read before the Clear, the
    request made after it), the server answering it before the Clear, its reply held up on the way
    until the Clear has landed: the page ends cleared."""
    from playwright.sync_api import expect

    app = served_app[0]
    with desktop_page(served_app[1]) as page:
        draw(page, "first", TWO)
        draw(page, "second", SEVEN)
        answered(page)
        page.evaluate(ASKED_AFTER_CLEAR_BEGINS)
        held = held_answers(app, page)
        clearing = []

        def after_the_answer(route):  # the Clear's request goes once the answer's has
            if asks_for(route, app, app.cleared):
                clearing.append(route)
            else:
                route.fallback()

        page.route("**/queue/join*", after_the_answer)
        draw(page, "first", SEVEN)
        page.wait_for_function("() => window.digitpair.waiting === true", timeout=20_000)
        page.get_by_role("button", name="Clear both").click()
        wait_for(page, held)
        wait_for(page, clearing)
        clearing[0].continue_()
        expect_cleared(page, expect)
        for route, reply in held:
            route.fulfill(response=reply)
        page.unroute("**/queue/join*")
        page.wait_for_timeout(1000)  # nothing lands later
        expect(page.locator("#consensus")).to_have_text("Draw a digit in both boxes.")
        expect(page.locator("#cards .card")).to_have_count(0)


def test_a_phone_reads_and_draws_at_390_px(served_app, tmp_path):
    """A finger draws as the page loads, in both pads; the page answers, reads well, and the About
    table keeps its words and numbers whole."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
            )
            page = phone.new_page()
            page.goto(served_app[1])
            expect(page.locator("#consensus")).to_have_text(
                "Draw a digit in both boxes.", timeout=20_000
            )
            assert (
                page.evaluate("document.documentElement.scrollWidth") <= 390
            )  # nothing wider than the phone
            expect(
                page.locator("#first .toolbar-wrap")
            ).to_be_hidden()  # no tool buttons over the paper
            blank, cdp = ink(page, "first"), phone.new_cdp_session(page)
            touch_draw(page, cdp, "first", SEVEN)
            assert ink_until(page, "first", lambda v: v > blank + 3000) > blank + 3000
            expect(page.locator("#consensus")).to_have_text(
                "Now draw a digit in the second box.", timeout=20_000
            )
            page.locator("#second").scroll_into_view_if_needed()
            touch_draw(page, cdp, "second", TWO)
            answered(page)
            expect(page.locator(f"#card-{DIGIT_HEADS[0]} .verdict")).to_have_text("first > second")
            open_about(page, expect)
            whole_words(page)
            readable(page)
            shot = (
                DOCS / "screenshot-phone.png"
                if os.environ.get("DIGITPAIR_SCREENSHOT") == "1"
                else tmp_path / "screenshot-phone.png"
            )
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
