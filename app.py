"""Draw two digits; five models say whether the first is <= the second.

`python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override,
as on a Hugging Face Space). Everything computed lives in digitpair/page/logic.py; this file
only lays out the page and wires events. Models: weights/, or the Hub repo in
$DIGITPAIR_MODEL_REPO (at $DIGITPAIR_MODEL_REVISION), two sets of five: ours (order head, the
top level) and the 2020 report's (FC head, fc/). The page's choice switches the cards between
them; the `/compare` API takes it as its optional third argument, `networks="ours"` (the default)
or `networks="report"`.
"""

import json
import os
import tempfile
import urllib.parse
from pathlib import Path

import gradio as gr
import PIL.Image
import torch

from digitpair import WeightsError
from digitpair.page import logic
from digitpair.core.drawing import DrawingError

# One intra-op thread: batch-1 passes through 56k-parameter networks gain nothing from more, and on
# a shared CPU the spinning of a second thread adds tens of ms at random (see benchmarks/bench_app.py).
torch.set_num_threads(1)
SETS = logic.load_sets()   # {"ours": LoadedModels, "report": LoadedModels}
# Server limits (docs/app.md). An upload over MAX_FILE_SIZE is refused with HTTP 413 before it
# reaches the cache; with QUEUE_SIZE requests waiting, the next gets "Queue is full" at once; the
# files Gradio keeps (uploads, the 14x14 previews) are deleted once CACHE_SECONDS old, checked as
# often. A digit drawing is a few kB; MAX_FILE_SIZE leaves room for a photo of one.
MAX_FILE_SIZE, QUEUE_SIZE, CACHE_SECONDS = 10 * 2**20, 64, 600   # bytes, requests, seconds
EXAMPLES = tuple(logic.examples())
# Each pad loads holding white paper as its background: the editor picks its brush when a
# background arrives (an empty value leaves it with no tool, "select the draw tool to start").
PAPER = PIL.Image.new("RGB", (280, 280), "white")
BLANK = {"background": PAPER, "layers": [], "composite": PAPER}
# The same paper as a file, for the browser to put in the pads itself (Clear, below).
PAPER_FILE = Path(tempfile.mkdtemp(prefix="digitpair-")) / "paper.png"
PAPER.save(PAPER_FILE)
# Files the page's own scripts hand the pads: served as they are, not copied to the cache.
gr.set_static_paths([logic.EXAMPLES_DIR, PAPER_FILE.parent])
# What each set shows before anything is drawn, and after Clear: its variants that failed to load.
INITIAL = {networks: logic.page_view(loaded, PAPER, PAPER) for networks, loaded in SETS.items()}

# The pads report an input event whenever their value is set, not only when someone draws: loading
# an example or clearing would each ask for an answer again (and upload both pads to do so). So the
# page is "quiet" from such a change until a finger or the mouse next goes down on a pad, and a
# quiet pad's input event stops in the browser (its script fails, so its .success step never runs).
PAGE_JS = """() => {
    window.digitpairQuiet = false;
    document.addEventListener("pointerdown", (event) => {
        if (event.target.closest("#first, #second")) window.digitpairQuiet = false;
    }, true);
    // What a pad shows, in short: its dark pixels' count and positions (the pads draw with WebGL;
    // a 2D copy of the canvas reads it back).
    window.digitpairInk = (box) => {
        const canvas = [...document.querySelectorAll(`#${box} canvas`)].pop();
        if (!canvas) return "";
        const copy = document.createElement("canvas");
        [copy.width, copy.height] = [canvas.width, canvas.height];
        const context = copy.getContext("2d", {willReadFrequently: true});
        context.drawImage(canvas, 0, 0);
        const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
        let count = 0, where = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i] < 100 && pixels[i + 3] > 128) { count += 1; where = (where + i) % 1000003; }
        }
        return `${count}:${where}`;
    };
}"""
# The pads are read a moment after the stroke ends: a pad reports its drawing only once it has
# marked itself edited (gradio's ImageEditor `has_user_edits`), and until then it hands over the
# value it was last given, the blank paper. Read at once, the second pad's first stroke, drawn
# right after the first pad's, sometimes arrived blank (1 in 6 scripted browser trials). Quiet is
# asked again after the wait: a Clear or an example clicked during it has set the pads since the
# stroke, and the drawing's answer, read after Clear's new generation, would land on the cleared
# page (seen once in five runs of tests/test_browser.py: Clear right after a drawing's answer).
SETTLE = """async () => {
    const quiet = () => { if (window.digitpairQuiet) throw new Error("the pads were set by the page, not drawn on"); };
    quiet();
    await new Promise((done) => setTimeout(done, 100));
    quiet();
}"""


def set_pads(first: Path, second: Path) -> str:
    """A script that puts two image files in the pads, from the browser: the images decoded first,
    so the pads can paint them at once, and the page quiet (see PAGE_JS). A query string that changes
    every time makes each value new to the pads, which otherwise ignore a value equal to the last."""
    return """async () => {
        window.digitpairQuiet = true;
        window.digitpairShown = {first: window.digitpairInk("first"), second: window.digitpairInk("second")};
        const stamp = Date.now();
        const values = %s.map((path) => {
            const url = new URL("gradio_api/file=" + path + "?t=" + stamp, location.href).href;
            const file = {path, url, orig_name: path.split("/").pop(), meta: {_type: "gradio.FileData"}};
            return {url, value: {background: file, layers: [], composite: file}};
        });
        await Promise.all(values.map(({url}) => { const image = new Image(); image.src = url; return image.decode(); }));
        return values.map(({value}) => value);
    }""" % json.dumps([str(first), str(second)])


# After the pads got their images, wait until both show something new and steady (the editor paints
# a new background some frames to seconds later, later on a loaded machine), at most PAINT_MS: the
# example's answer then never shows beside the pads' old drawings.
PAINT_MS = 5000
PAINTED = """async () => {
    const start = performance.now(), boxes = ["first", "second"];
    let last = {};
    while (performance.now() - start < %d) {
        await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 50)));
        const now = Object.fromEntries(boxes.map((box) => [box, window.digitpairInk(box)]));
        if (boxes.every((box) => now[box] !== window.digitpairShown[box] && now[box] === last[box])) return;
        last = now;
    }
}""" % PAINT_MS
# Clear and an example start a new generation of the page. The browser reads the pads (uploading
# their images) before it queues a drawing's request, so a request for drawings read just before a
# Clear can reach the server after it; it carries the generation it was read in and is answered
# with no change. The events that write the answer run one at a time, in the order they came (one
# queue group); a request takes ~25 ms (benchmarks/bench_app.py), so that is no bottleneck.
PAGE = "page"
# The Space links the reports in its own repo; a local server serves them itself.
gr.set_static_paths(logic.report_files())
ABOUT = logic.about_markdown(link=None if os.environ.get("SPACE_ID") else lambda p: f"/gradio_api/file={p}",
                             record=logic.guard_record(SETS))

# Every text at least 12 px and 4.5:1 against its background (WCAG AA): gradio's subdued greys
# (block labels, captions, the footer) are darkened, its smallest sizes raised.
PAGE_CSS = """
:root, .dark { --body-text-color-subdued: #4b5563; --block-label-text-color: #374151; --block-info-text-color: #4b5563;
               --block-title-text-color: #374151; --checkbox-label-text-color: #1f2937; --text-xxs: 12px; --text-xs: 12px;
               --block-label-text-size: 13px; --block-info-text-size: 13px; }
footer, footer * { color: #4b5563 !important; font-size: 13px !important; opacity: 1 !important; }
footer img { opacity: 1; }
/* The pads: about as wide as they are high, so the white paper fills most of each (a stroke off the
   paper draws nothing). Only Undo and Redo beside it: the tool buttons covered the paper's left
   edge, and the page's Clear both and fixed pen make the others needless. */
#pads { justify-content: center; }
#first, #second { flex: 0 1 360px !important; max-width: 360px; }
#first .toolbar-wrap, #second .toolbar-wrap,
#first button[aria-label="Pan"], #second button[aria-label="Pan"],
#first button[aria-label="Zoom in"], #second button[aria-label="Zoom in"],
#first button[aria-label="Zoom out"], #second button[aria-label="Zoom out"],
#first button[aria-label="Clear canvas"], #second button[aria-label="Clear canvas"],
#first .zoom-number, #second .zoom-number, #first .separator, #second .separator { display: none !important; }
#examples-row { align-items: center; gap: 8px; }
#examples-row .example { flex: 0 0 auto; min-width: 0; }
/* The About table: words and numbers whole; the table scrolls sideways on a narrow screen. Headers
   wrap between words and the description keeps a readable width: with headers on one line, the
   ensemble columns took the width and squeezed "what it is" to a word a line. */
#about table { display: block; overflow-x: auto; }
#about td, #about th { word-break: normal; overflow-wrap: normal; hyphens: none; }
#about td:not(:nth-child(2)) { white-space: nowrap; }
#about th { white-space: normal; min-width: 5em; }
#about td:nth-child(2) { min-width: 13em; }
"""
CARD_CSS = """
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 8px; }
.card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px;
        background: var(--block-background-fill); min-width: 0; }
.card .name { font-weight: 600; font-size: 14px; color: #1f2937; }
.card .verdict { font-size: 1.15em; font-weight: 600; margin: 2px 0 4px; }
.card .mark { font-size: 13px; padding: 1px 6px; border-radius: 4px; margin-left: 4px; }
.card .mark.right { background: #d1fadf; color: #05603a; }
.card .mark.wrong { background: #fee4e2; color: #912018; }
.card .bar { height: 6px; background: #f5c99b; border-radius: 3px; margin: 3px 0 6px; }
.card .bar div { height: 100%; background: #3b6fd4; border-radius: 3px; }
.card .prob, .card .reading, .card .caption, .card .head { font-size: 13px; }
.card .caption, .card .head { color: #4b5563; }
.card .head { margin-top: 6px; border-top: 1px solid var(--border-color-primary); padding-top: 4px; }
.card .head summary { cursor: pointer; color: #374151; }
.card .key { font-weight: 600; } .card .key.leq { color: #1d4ed8; } .card .key.gt { color: #9a3412; }
.joint { display: block; margin: 6px 0 2px; max-width: 100%; height: auto; }
.joint .leq { fill: #3b6fd4; } .joint .gt { fill: #e8811a; }
.joint .frame { fill: none; stroke: #6b7280; } .joint .edge { fill: none; stroke: #222; stroke-width: 1.2; }
.joint .axis { font-size: 12px; fill: #374151; text-anchor: middle; }
"""
# What every `demo.launch` passes: `python app.py` below and the tests' served app (tests/conftest.py).
LAUNCH_OPTIONS = {"max_file_size": MAX_FILE_SIZE, "css": PAGE_CSS, "js": PAGE_JS}


def compare(first: dict, second: dict, networks: str = logic.DEFAULT_NETWORKS) -> dict:
    """Two images (gradio_client `handle_file(path or URL)`, or Sketchpad dicts) and which networks,
    "ours" (order head, the default) or "report" (the 2020 report's, FC head) -> for each variant of
    that set P(first <= second), the verdict and, where the variant has a digit head, its top-3
    digits per image; and for each drawing the guard's judgement ("digit", "unsure" or "not a
    digit", as the page says it) and its two digits."""
    try:
        return logic.compare(logic.choose(SETS, networks), logic.uploaded_image(first), logic.uploaded_image(second))
    except (DrawingError, WeightsError, logic.ChoiceError) as e:
        raise gr.Error(str(e), print_exception=False) from None   # a bad input, not a server fault


def show(first, second, networks: str, seen: int = 0, current: int = 0) -> list:
    """The page's answer for two drawings; none (gr.skip) for drawings read before the page was
    last cleared or given an example: `seen` is the page's generation when the browser read the
    pads, `current` the generation now (see PAGE)."""
    if seen < current:
        return [gr.skip()] * 4
    view = logic.page_view(logic.choose(SETS, networks), first, second, EXAMPLES)
    return [view.headline, view.cards, *view.previews]


def show_example(index: int, networks: str, current: int) -> list:
    """The answer for example `index`, read from its files (the browser has put them in the pads)."""
    example = EXAMPLES[index]
    return [*show(str(example.first), str(example.second), networks), current + 1, current + 1]


def cleared(networks: str, current: int) -> list:
    view = INITIAL[networks]
    return [view.headline, view.cards, None, None, current + 1, current + 1]


def pad(box: str) -> gr.Sketchpad:
    # White paper, black brush; a 280x280 canvas is MNIST's 28x28 at 10x, and a 12 px brush
    # radius gives strokes of MNIST's thickness for a digit that fills the box.
    # min_width: on a phone the two pads stack, each wide enough to draw in.
    return gr.Sketchpad(value=BLANK, label=f"{box} digit: draw inside the white square", elem_id=box, type="pil",
                        image_mode="RGBA", canvas_size=(280, 280), min_width=300, height=340, layers=False,
                        transforms=(),
                        format="png", brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=12))


with gr.Blocks(title="digitpair: is the first digit <= the second?",
               delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
    gr.Markdown("# Is the first digit ≤ the second?\nDraw a digit in each box, or pick an example: five models "
                "answer as you draw, one card each (each model is a kind of network; ours average five "
                "trained copies of it).")
    with gr.Row(elem_id="examples-row"):
        gr.Markdown("Examples, MNIST test pairs:", elem_classes="example")
        example_buttons = [gr.Button(e.label, size="sm", elem_classes="example", elem_id=f"example-{i}")
                           for i, e in enumerate(EXAMPLES)]
    initial = INITIAL[logic.DEFAULT_NETWORKS]
    headline = gr.Markdown(initial.headline, elem_id="consensus")
    with gr.Row(elem_id="pads"):
        first, second = pad("first"), pad("second")
    with gr.Row():
        clear = gr.Button("Clear both", elem_id="clear", scale=1, size="lg")
        choice = gr.Radio([(label, networks) for networks, label in logic.CHOICES.items()], scale=3,
                          value=logic.DEFAULT_NETWORKS, label="Which networks answer", elem_id="networks")
    cards = gr.HTML(initial.cards, elem_id="cards", html_template='<div class="cards">${value}</div>',
                    css_template=CARD_CSS, js_on_load=None)
    with gr.Row():
        seen = [gr.Image(label=f"{box} digit, as the networks see it (14x14)", interactive=False, height=150,
                         format="png", elem_id=f"seen-{box}") for box in logic.BOXES]
    outputs = [headline, cards, *seen]
    # The page's generation: as the browser last heard it (read with the pads), and as it is.
    generation, current = gr.Number(0, visible=False, precision=0), gr.State(0)
    with gr.Accordion("About", open=False, elem_id="about"):
        gr.Markdown(ABOUT)

    # .input: the person drew (an example or Clear setting the pads is not a drawing: see PAGE_JS).
    for box in (first, second):
        box.input(None, js=SETTLE, trigger_mode="always_last", api_visibility="private").success(
            show, [first, second, choice, generation, current], outputs, show_progress="hidden",
            concurrency_id=PAGE, api_visibility="private")
    # Another set answers for the drawings already in the boxes: nothing is redrawn.
    choice.input(show, [first, second, choice, generation, current], outputs, trigger_mode="always_last",
                 show_progress="hidden", concurrency_id=PAGE, api_visibility="private")
    # An example: the browser puts its two files in the pads, lets them paint, then asks for the
    # answer once, read from the same files on the server.
    for index, (button, example) in enumerate(zip(example_buttons, EXAMPLES)):
        button.click(None, None, [first, second], js=set_pads(example.first, example.second),
                     api_visibility="private").then(None, js=PAINTED, api_visibility="private").then(
            lambda networks, now, index=index: show_example(index, networks, now), [choice, current],
            [*outputs, generation, current], show_progress="hidden", concurrency_id=PAGE, api_visibility="private")
    clear.click(None, None, [first, second], js=set_pads(PAPER_FILE, PAPER_FILE), api_visibility="private").then(
        cleared, [choice, current], [*outputs, generation, current], show_progress="hidden",
        concurrency_id=PAGE, api_visibility="private")
    gr.api(compare, api_name="compare")
demo.queue(max_size=QUEUE_SIZE)


if __name__ == "__main__":
    # Gradio takes the next free port when the asked one is busy: the last line says where it serves.
    demo.launch(**LAUNCH_OPTIONS, quiet=True, prevent_thread_lock=True)
    asked, port = int(os.environ.get("GRADIO_SERVER_PORT", 7860)), urllib.parse.urlsplit(demo.local_url).port
    busy = f" (port {asked} was busy)" if port != asked else ""
    print(f"serving on {demo.local_url}{busy}", flush=True)
    demo.block_thread()
