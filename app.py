"""Draw two digits; five networks say whether the first is <= the second.

`python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override,
as on a Hugging Face Space). Everything computed lives in digitpair/app_logic.py; this file
only lays out the page and wires events. Models: weights/, or the Hub repo in
$DIGITPAIR_MODEL_REPO (at $DIGITPAIR_MODEL_REVISION), two sets of five: ours (order head, the
top level) and the 2020 report's (FC head, fc/). The page's choice switches the cards between
them; the `/compare` API takes it as its optional third argument, `networks="ours"` (the default)
or `networks="report"`.
"""

import os
import urllib.parse

import gradio as gr
import PIL.Image
import torch

from digitpair import WeightsError
from digitpair import app_logic as logic
from digitpair.drawing import DrawingError

# One intra-op thread: batch-1 passes through 56k-parameter networks gain nothing from more, and on
# a shared CPU the spinning of a second thread adds tens of ms at random (see benchmarks/bench_app.py).
torch.set_num_threads(1)
SETS = logic.load_sets()   # {"ours": LoadedModels, "report": LoadedModels}
# Server limits (README "App"). An upload over MAX_FILE_SIZE is refused with HTTP 413 before it
# reaches the cache; with QUEUE_SIZE requests waiting, the next gets "Queue is full" at once; the
# files Gradio keeps (uploads, the 14x14 previews) are deleted once CACHE_SECONDS old, checked as
# often. A digit drawing is a few kB; MAX_FILE_SIZE leaves room for a photo of one.
MAX_FILE_SIZE, QUEUE_SIZE, CACHE_SECONDS = 10 * 2**20, 64, 600   # bytes, requests, seconds
# What every `demo.launch` passes: `python app.py` below and the tests' served app (tests/conftest.py).
LAUNCH_OPTIONS = {"max_file_size": MAX_FILE_SIZE}
EXAMPLES = tuple(logic.examples())
# Each pad loads holding white paper as its background: the editor picks its brush when a
# background arrives (an empty value leaves it with no tool, "select the draw tool to start").
PAPER = PIL.Image.new("RGB", (280, 280), "white")
BLANK = {"background": PAPER, "layers": [], "composite": PAPER}
# What each set shows before anything is drawn, and after Clear: its variants that failed to load.
INITIAL = {networks: logic.page_view(loaded, PAPER, PAPER) for networks, loaded in SETS.items()}
# Clear both, in the browser: each pad's own "Clear canvas" (it wipes every stroke and the
# background, every time), then its Brush, which that clearing deselects. Setting the pads' value
# instead clears only when the value differs from the last one set, so a second Clear did nothing.
# The choice of networks and the generation pass through to `cleared`.
CLEAR_PADS = """(networks, current) => {
    for (const id of ["first", "second"]) {
        const pad = document.getElementById(id);
        pad.querySelector('button[aria-label="Clear canvas"]')?.click();
        pad.querySelector('button[aria-label="Brush"]')?.click();
    }
    return [networks, current];
}"""
SETTLE = "() => new Promise((done) => setTimeout(done, 100))"   # ms: see the pads' .input below
# Clear and an example start a new generation of the page. The browser reads the pads (uploading
# their images) before it queues a drawing's request, so a request for drawings read just before a
# Clear can reach the server after it; it carries the generation it was read in and is answered
# with no change. The events that write the answer run one at a time, in the order they came (one
# queue group); a request takes ~8 ms (benchmarks/bench_app.py), so that is no bottleneck.
PAGE = "page"
# The Space links the reports in its own repo; a local server serves them itself.
gr.set_static_paths(logic.report_files())
ABOUT = logic.about_markdown(link=None if os.environ.get("SPACE_ID") else lambda p: f"/gradio_api/file={p}")

CARD_CSS = """
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { flex: 1 1 170px; max-width: 240px; border: 1px solid var(--border-color-primary); border-radius: 8px;
        padding: 10px; background: var(--block-background-fill); }
.card .name { font-family: var(--font-mono); font-size: 0.85em; color: var(--body-text-color-subdued); }
.card .verdict { font-size: 1.25em; font-weight: 600; margin: 2px 0 4px; }
.card .mark { font-size: 0.75em; padding: 1px 6px; border-radius: 4px; margin-left: 4px; }
.card .mark.right { background: #d1fadf; color: #05603a; }
.card .mark.wrong { background: #fee4e2; color: #912018; }
.card .bar { height: 6px; background: #f5c99b; border-radius: 3px; margin: 3px 0 6px; }
.card .bar div { height: 100%; background: #3b6fd4; border-radius: 3px; }
.card .reading, .card .caption, .card .head { font-size: 0.85em; }
.card .caption, .card .head { color: var(--body-text-color-subdued); }
.joint { display: block; margin: 6px 0 2px; }
.joint .leq { fill: #3b6fd4; } .joint .gt { fill: #e8811a; }
.joint .frame { fill: none; stroke: #bbb; } .joint .edge { fill: none; stroke: #222; stroke-width: 1.2; }
.joint .axis { font-size: 8px; fill: #666; text-anchor: middle; }
"""


def compare(first: dict, second: dict, networks: str = logic.DEFAULT_NETWORKS) -> dict:
    """Two images (gradio_client `handle_file(path or URL)`, or Sketchpad dicts) and which networks,
    "ours" (order head, the default) or "report" (the 2020 report's, FC head) -> for each variant of
    that set P(first <= second), the verdict and, where the variant has a digit head, its top-3
    digits per image."""
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
    paths = [str(EXAMPLES[index].first), str(EXAMPLES[index].second)]
    return [*({"background": path, "layers": [], "composite": path} for path in paths), *show(*paths, networks),
            current + 1, current + 1]


def cleared(networks: str, current: int) -> list:
    view = INITIAL[networks]
    return [view.headline, view.cards, None, None, current + 1, current + 1]


def pad(box: str) -> gr.Sketchpad:
    # White paper, black brush; a 280x280 canvas is MNIST's 28x28 at 10x, and a 12 px brush
    # radius gives strokes of MNIST's thickness for a digit that fills the box.
    # min_width: on a phone the two pads stack, each wide enough to draw in.
    return gr.Sketchpad(value=BLANK, label=f"{box} digit", elem_id=box, type="pil", image_mode="RGBA",
                        canvas_size=(280, 280), min_width=300, layers=False, transforms=(), format="png",
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=12))


with gr.Blocks(title="digitpair: is the first digit <= the second?",
               delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
    gr.Markdown("# Is the first digit ≤ the second?\nDraw a digit in each box, or pick an example below: "
                "five networks answer as you draw.")
    initial = INITIAL[logic.DEFAULT_NETWORKS]
    headline = gr.Markdown(initial.headline, elem_id="consensus")
    with gr.Row():
        first, second = pad("first"), pad("second")
    clear = gr.Button("Clear both", elem_id="clear")
    choice = gr.Radio([(label, networks) for networks, label in logic.CHOICES.items()],
                      value=logic.DEFAULT_NETWORKS, label="Which networks answer", elem_id="networks")
    cards = gr.HTML(initial.cards, elem_id="cards", html_template='<div class="cards">${value}</div>',
                    css_template=CARD_CSS, js_on_load=None)
    with gr.Row():
        seen = [gr.Image(label=f"{box} digit, as the networks see it (14x14)", interactive=False, height=150,
                         format="png", elem_id=f"seen-{box}") for box in logic.BOXES]
    outputs = [headline, cards, *seen]
    # The page's generation: as the browser last heard it (read with the pads), and as it is.
    generation, current = gr.Number(0, visible=False, precision=0), gr.State(0)
    gallery = gr.Dataset(label="Examples: MNIST test pairs (click one)", type="index", elem_id="examples",
                         components=[gr.Image(label="first", render=False), gr.Image(label="second", render=False),
                                     gr.Textbox(label="digits", render=False)],
                         samples=[[str(e.first), str(e.second), e.label] for e in EXAMPLES])
    with gr.Accordion("About", open=False):
        gr.Markdown(ABOUT)

    # .input: the person drew (loading an example or clearing is not a drawing). The pads are read a
    # moment after the stroke ends: a pad reports its drawing only once it has marked itself edited
    # (gradio's ImageEditor `has_user_edits`), and until then it hands over the value it was last
    # given, the blank paper. Read at once, the second pad's first stroke, drawn right after the
    # first pad's, sometimes arrived blank (1 in 6 scripted browser trials).
    for box in (first, second):
        box.input(None, js=SETTLE, trigger_mode="always_last", api_visibility="private").then(
            show, [first, second, choice, generation, current], outputs, show_progress="hidden",
            concurrency_id=PAGE, api_visibility="private")
    # Another set answers for the drawings already in the boxes: nothing is redrawn.
    choice.input(show, [first, second, choice, generation, current], outputs, trigger_mode="always_last",
                 show_progress="hidden", concurrency_id=PAGE, api_visibility="private")
    gallery.click(show_example, [gallery, choice, current], [first, second, *outputs, generation, current],
                  concurrency_id=PAGE, api_visibility="private")
    clear.click(cleared, [choice, current], [*outputs, generation, current], js=CLEAR_PADS,
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
