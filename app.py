"""Draw two digits; five models say whether the first is <= the second.

`python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override,
as on a Hugging Face Space). This file lays out the page and wires its events; what they compute
lives in digitpair/page/ (served.py: the networks; compare.py: the one path from two drawings to
the networks' answers and the guard's judgement; view.py with page.css and cards.css: what the
page shows; about.py: the About panel; page.js: the code in the browser). Models: weights/, or
the Hub repo in $DIGITPAIR_MODEL_REPO (at $DIGITPAIR_MODEL_REVISION), two sets of five: ours
(order head, the top level) and the 2020 report's (FC head, fc/). The page's choice switches the
cards between them; the `/compare` API takes it as its optional third argument,
`networks="ours"` (the default) or `networks="report"`.
"""

import functools
import os
import tempfile
import urllib.parse
from pathlib import Path

import gradio as gr
import PIL.Image
import torch

from digitpair import WeightsError
from digitpair.core.drawing import DrawingError
from digitpair.page import about, browser, served, view
from digitpair.page.compare import BOXES, uploaded_image
from digitpair.page.compare import compare as compare_drawings
from digitpair.page.examples import EXAMPLES_DIR, examples

# One intra-op thread: batch-1 passes through 56k-parameter networks gain nothing from more, and
# on a shared CPU the spinning of a second thread adds tens of ms at random (see
# benchmarks/bench_app.py).
torch.set_num_threads(1)
SETS = served.load_sets()  # {"ours": NetworkSet, "report": NetworkSet}
# Server limits (docs/app.md). An upload over MAX_FILE_SIZE is refused with HTTP 413 before it
# reaches the cache; with QUEUE_SIZE requests waiting, the next gets "Queue is full" at once; the
# files Gradio keeps (uploads, the 14x14 previews) are deleted once CACHE_SECONDS old, checked as
# often. A digit drawing is a few kB; MAX_FILE_SIZE leaves room for a photo of one.
MAX_FILE_SIZE, QUEUE_SIZE, CACHE_SECONDS = 10 * 2**20, 64, 600  # bytes, requests, seconds
EXAMPLES = tuple(examples())
# Each pad loads holding white paper as its background: the editor picks its brush when a
# background arrives (an empty value leaves it with no tool, "select the draw tool to start").
PAPER = PIL.Image.new("RGB", (280, 280), "white")
BLANK = {"background": PAPER, "layers": [], "composite": PAPER}
# The same paper as a file, for the browser to put in the pads itself (Clear, below).
PAPER_FILE = Path(tempfile.mkdtemp(prefix="digitpair-")) / "paper.png"
PAPER.save(PAPER_FILE)
# Files the page's own scripts hand the pads: served as they are, not copied to the cache.
gr.set_static_paths([EXAMPLES_DIR, PAPER_FILE.parent])
# What each set shows before anything is drawn, and after Clear: its variants that failed to load.
INITIAL = {
    networks: view.page_view(compare_drawings(nets, PAPER, PAPER))
    for networks, nets in SETS.items()
}
# Clear and an example start a new generation of the page. The browser reads the pads (uploading
# their images) before it queues a drawing's request, so a request for drawings read just before
# a Clear can reach the server after it; it carries the generation it was read in and is answered
# with no change. The events that write the answer run one at a time, in the order they came (one
# queue group); a request takes ~25 ms (benchmarks/bench_app.py), so that is no bottleneck.
PAGE = "page"
# The Space links the reports in its own repo; a local server serves them itself.
gr.set_static_paths(about.report_files(SETS))
ABOUT = about.about_markdown(
    SETS, link=None if os.environ.get("SPACE_ID") else lambda p: f"/gradio_api/file={p}"
)
# What every `demo.launch` passes: `python app.py` below and the tests' served app
# (tests/conftest.py).
LAUNCH_OPTIONS = {"max_file_size": MAX_FILE_SIZE, "css": view.PAGE_CSS, "js": browser.SCRIPT}


def compare(first: dict, second: dict, networks: str = served.DEFAULT_NETWORKS) -> dict:
    """Two images (gradio_client `handle_file(path or URL)`, or Sketchpad dicts) and which networks,
    "ours" (order head, the default) or "report" (the 2020 report's, FC head) -> for each variant of
    that set P(first <= second), the verdict and, where the variant has a digit head, its top-3
    digits per image; and for each drawing the guard's judgement ("digit", "unsure" or "not a
    digit", as the page says it) and its two digits."""
    try:
        nets = served.choose(SETS, networks)
        return compare_drawings(nets, uploaded_image(first), uploaded_image(second)).to_json()
    except (DrawingError, WeightsError, served.ChoiceError) as e:
        raise gr.Error(str(e), print_exception=False) from None  # a bad input, not a server fault


def show(first, second, networks: str, seen: int = 0, current: int = 0) -> list:
    """The page's answer for two drawings; none (gr.skip) for drawings read before the page was
    last cleared or given an example: `seen` is the page's generation when the browser read the
    pads, `current` the generation now (see PAGE)."""
    if seen < current:
        return [gr.skip()] * 4
    shown = view.page_view(compare_drawings(served.choose(SETS, networks), first, second, EXAMPLES))
    return [shown.headline, shown.cards, *shown.previews]


def show_example(index: int, networks: str, current: int) -> list:
    """The answer for example `index`, read from its files (the browser has put them in the
    pads)."""
    example = EXAMPLES[index]
    return [*show(str(example.first), str(example.second), networks), current + 1, current + 1]


def cleared(networks: str, current: int) -> list:
    shown = INITIAL[networks]
    return [shown.headline, shown.cards, None, None, current + 1, current + 1]


def landed(answer) -> None:
    """After a drawing's answer (an event), the browser counts it landed, come or failed (page.js):
    gradio runs .then's step after an answer that came, .failure's after one that failed."""
    answer.then(None, js=browser.LANDED, api_visibility="private")
    answer.failure(None, js=browser.LANDED, api_visibility="private")


def pad(box: str) -> gr.Sketchpad:
    # White paper, black brush; a 280x280 canvas is MNIST's 28x28 at 10x, and a 12 px brush
    # radius gives strokes of MNIST's thickness for a digit that fills the box.
    # min_width: on a phone the two pads stack, each wide enough to draw in.
    return gr.Sketchpad(
        value=BLANK,
        label=f"{box} digit: draw inside the white square",
        elem_id=box,
        type="pil",
        image_mode="RGBA",
        canvas_size=(280, 280),
        min_width=300,
        height=340,
        layers=False,
        transforms=(),
        format="png",
        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=12),
    )


with gr.Blocks(
    title="digitpair: is the first digit <= the second?",
    delete_cache=(CACHE_SECONDS, CACHE_SECONDS),
) as demo:
    gr.Markdown(
        "# Is the first digit ≤ the second?\nDraw a digit in each box, or pick an example: "
        "five models answer as you draw, one card each (each model is a kind of network; "
        "ours average five trained copies of it)."
    )
    with gr.Row(elem_id="examples-row"):
        gr.Markdown("Examples, MNIST test pairs:", elem_classes="example")
        example_buttons = [
            gr.Button(e.label, size="sm", elem_classes="example", elem_id=f"example-{i}")
            for i, e in enumerate(EXAMPLES)
        ]
    initial = INITIAL[served.DEFAULT_NETWORKS]
    headline = gr.Markdown(initial.headline, elem_id="consensus")
    with gr.Row(elem_id="pads"):
        first, second = pad("first"), pad("second")
    with gr.Row():
        clear = gr.Button("Clear both", elem_id="clear", scale=1, size="lg")
        choice = gr.Radio(
            [(label, networks) for networks, label in served.CHOICES.items()],
            scale=3,
            value=served.DEFAULT_NETWORKS,
            label="Which networks answer",
            elem_id="networks",
        )
    cards = gr.HTML(
        initial.cards,
        elem_id="cards",
        css_template=view.CARDS_CSS,
        js_on_load=None,
        html_template='<div class="cards">${value}</div>',
    )
    with gr.Row():
        seen = [
            gr.Image(
                label=f"{box} digit, as the networks see it (14x14)",
                interactive=False,
                height=150,
                format="png",
                elem_id=f"seen-{box}",
            )
            for box in BOXES
        ]
    outputs = [headline, cards, *seen]
    # The page's generation: as the browser last heard it (read with the pads), and as it is.
    generation, current = gr.Number(0, visible=False, precision=0), gr.State(0)
    with gr.Accordion("About", open=False, elem_id="about"):
        gr.Markdown(ABOUT)

    # The answer for the drawings in the boxes, counted on its way until it lands or fails
    # (page.js's `sending`). A trigger while the last answer is on its way is answered after it,
    # with the boxes as they are then (gradio's default skips it, and the page would show the
    # answer for the drawing without the last stroke).
    answer = dict(
        fn=show,
        inputs=[first, second, choice, generation, current],
        outputs=outputs,
        js=browser.SENDING,
        trigger_mode="always_last",
        show_progress="hidden",
        concurrency_id=PAGE,
        api_visibility="private",
    )
    # .input: the person drew (an example or Clear setting the pads is not a drawing: page.js).
    drawn = {**answer, "js": browser.sending_drawn(answer["inputs"].index(generation))}
    for box in (first, second):
        landed(
            box.input(
                None, js=browser.SETTLE, trigger_mode="always_last", api_visibility="private"
            ).success(**drawn)
        )
    # Another set answers for the drawings already in the boxes: nothing is redrawn.
    landed(choice.input(**answer))
    # An example: the browser puts its two files in the pads, lets them paint, then asks for the
    # answer once, read from the same files on the server.
    for index, (button, example) in enumerate(zip(example_buttons, EXAMPLES)):
        button.click(
            None,
            None,
            [first, second],
            api_visibility="private",
            js=browser.set_pads(example.first, example.second),
        ).then(None, js=browser.PAINTED, api_visibility="private").then(
            functools.partial(show_example, index),
            [choice, current],
            [*outputs, generation, current],
            show_progress="hidden",
            concurrency_id=PAGE,
            api_visibility="private",
        )
    clear.click(
        None,
        None,
        [first, second],
        js=browser.set_pads(PAPER_FILE, PAPER_FILE),
        api_visibility="private",
    ).then(
        cleared,
        [choice, current],
        [*outputs, generation, current],
        show_progress="hidden",
        concurrency_id=PAGE,
        api_visibility="private",
    )
    gr.api(compare, api_name="compare")
demo.queue(max_size=QUEUE_SIZE)


if __name__ == "__main__":
    # Gradio takes the next free port when the asked one is busy: the last line says where it
    # serves.
    demo.launch(**LAUNCH_OPTIONS, quiet=True, prevent_thread_lock=True)
    asked = int(os.environ.get("GRADIO_SERVER_PORT", 7860))
    port = urllib.parse.urlsplit(demo.local_url).port
    busy = f" (port {asked} was busy)" if port != asked else ""
    print(f"serving on {demo.local_url}{busy}", flush=True)
    demo.block_thread()
