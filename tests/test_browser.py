"""The page in a real browser: Debian's chromium, driven by Playwright, draws a 2 and a 7 with the mouse.

CI installs chromium (.ci/run) and must run this test; it is skipped only where chromium is
absent and $CI is unset. With DIGITPAIR_SCREENSHOT=1 it refreshes docs/screenshot.png, the
README's picture of the app; otherwise the screenshot goes to pytest's temporary folder, so a
test run leaves the checkout as it was.
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"
DIGIT_HEADS = ["simple_cnn", "shared_aux", "unshared_aux"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="Debian chromium not installed (apt-get install chromium)")

# Strokes in the unit square of the paper, as a person draws them.
TWO = [[(0.2, 0.3), (0.4, 0.12), (0.65, 0.15), (0.75, 0.35), (0.6, 0.55), (0.35, 0.75), (0.2, 0.88),
        (0.5, 0.88), (0.8, 0.88)]]
SEVEN = [[(0.2, 0.15), (0.8, 0.15), (0.6, 0.5), (0.45, 0.88)]]


def draw(page, elem_id: str, strokes) -> None:
    pad = page.locator(f"#{elem_id}")
    pad.get_by_role("button", name="Brush").click()   # the canvas ignores the mouse until a tool is chosen
    # The editor stacks two canvases of the same size; the paper is the square in their middle.
    box = pad.locator("canvas").first.bounding_box()
    side = 0.8 * min(box["width"], box["height"])
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    for stroke in strokes:
        page.mouse.move(left + stroke[0][0] * side, top + stroke[0][1] * side)
        page.mouse.down()
        for u, v in stroke[1:]:
            page.mouse.move(left + u * side, top + v * side, steps=1)
        page.mouse.up()


def test_drawing_two_digits_shows_every_verdict(served_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(served_app[1])
            draw(page, "first", TWO)
            draw(page, "second", SEVEN)
            # No button pressed: the page answers on .change, as the person draws.
            expect(page.locator("#consensus")).to_contain_text("models", timeout=20_000)
            for name in DIGIT_HEADS:
                expect(page.locator(f"#verdict-{name} [data-testid=label-output-value]")).to_have_text("first ≤ second")
                guesses = page.locator(f"#digits-{name}").inner_text()
                assert guesses.startswith("first: 2") and "second: 7" in guesses, (name, guesses)
            for name in ("shared", "unshared"):
                # Weaker on their own; the page must still give them a verdict, whichever it is.
                expect(page.locator(f"#verdict-{name} [data-testid=label-output-value]")).to_have_text(
                    re.compile("^first [≤>] second$"))
                expect(page.locator(f"#digits-{name}")).to_contain_text("no digit head")
            for box in ("first", "second"):
                expect(page.locator(f"#seen-{box} img")).to_be_visible()
            shot = SCREENSHOT if os.environ.get("DIGITPAIR_SCREENSHOT") == "1" else tmp_path / "screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            page.get_by_role("button", name="Clear both").click()
            expect(page.locator("#consensus")).to_contain_text("draw a digit")
        finally:
            browser.close()
