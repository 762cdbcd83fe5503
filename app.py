"""Draw two digits; five networks say whether the first is <= the second.

`python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override,
as on a Hugging Face Space). Everything computed lives in digitpair/app_logic.py; this file
only lays out the page and wires events. Models: weights/, or the Hub repo in
$DIGITPAIR_MODEL_REPO (at $DIGITPAIR_MODEL_REVISION).
"""

from pathlib import Path

import gradio as gr
import torch

from digitpair import VARIANTS, WeightsError
from digitpair import app_logic as logic
from digitpair.drawing import DrawingError

# One intra-op thread: batch-1 passes through 56k-parameter networks gain nothing from more, and on
# a shared CPU the spinning of a second thread adds tens of ms at random (see benchmarks/bench_app.py).
torch.set_num_threads(1)
LOADED = logic.load_models()
EXAMPLES = Path(__file__).resolve().parent / "examples"
# Server limits (README "App"). An upload over MAX_FILE_SIZE is refused with HTTP 413 before it
# reaches the cache; with QUEUE_SIZE requests waiting, the next gets "Queue is full" at once; the
# files Gradio keeps (uploads, the 14x14 previews) are deleted once CACHE_SECONDS old, checked as
# often. A digit drawing is a few kB; MAX_FILE_SIZE leaves room for a photo of one.
MAX_FILE_SIZE, QUEUE_SIZE, CACHE_SECONDS = 10 * 2**20, 64, 600   # bytes, requests, seconds
# What every `demo.launch` passes: `python app.py` below and the tests' served app (tests/conftest.py).
LAUNCH_OPTIONS = {"max_file_size": MAX_FILE_SIZE}


def compare(first: dict, second: dict) -> dict:
    """Two images (gradio_client `handle_file(path or URL)`, or Sketchpad dicts) -> for each variant
    P(first <= second), the verdict and, where the variant has a digit head, its top-3 digits per image."""
    try:
        return logic.compare(LOADED, logic.uploaded_image(first), logic.uploaded_image(second))
    except (DrawingError, WeightsError) as e:
        raise gr.Error(str(e), print_exception=False) from None   # a bad input, not a server fault


def show(first, second) -> list:
    view = logic.page_view(LOADED, first, second)
    return [view.headline, *view.verdicts.values(), *view.notes.values(), *view.previews]


def pad(box: str) -> gr.Sketchpad:
    # White paper, black brush; a 280x280 canvas is MNIST's 28x28 at 10x, and a 12 px brush
    # radius gives strokes of MNIST's thickness for a digit that fills the box.
    return gr.Sketchpad(label=box, elem_id=box, type="pil", image_mode="RGBA", canvas_size=(280, 280),
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=12),
                        layers=False, transforms=(), format="png")


with gr.Blocks(title="digitpair: is the first digit <= the second?",
               delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
    gr.Markdown("# Is the first digit ≤ the second?\nDraw a digit in each box: the five networks "
                "of the study answer as you draw.")
    initial = logic.page_view(LOADED, None, None)   # names the variants that failed to load, if any
    headline = gr.Markdown(initial.headline if not LOADED.models else "Draw a digit in both boxes.",
                           elem_id="consensus")
    with gr.Row():
        first, second = pad("first"), pad("second")
    with gr.Row():
        gr.ClearButton([first, second], value="Clear both")
        compare_button = gr.Button("Compare", variant="primary")
    verdicts, notes = [], []
    with gr.Row():
        for name in VARIANTS:
            with gr.Column(min_width=150):
                verdicts.append(gr.Label(label=name, num_top_classes=2, elem_id=f"verdict-{name}"))
                notes.append(gr.Markdown(initial.notes[name], elem_id=f"digits-{name}"))
    with gr.Row():
        seen = [gr.Image(label=f"{box}, as the networks see it (14x14)", interactive=False, height=180, format="png",
                         elem_id=f"seen-{box}") for box in logic.BOXES]
    outputs = [headline, *verdicts, *notes, *seen]
    # Loading an example into a Sketchpad fires no .change: the example runs `show` itself.
    gr.Examples([[str(a), str(b)] for a, b in zip(sorted(EXAMPLES.glob("pair*_first_*.png")),
                                                  sorted(EXAMPLES.glob("pair*_second_*.png")))],
                [first, second], outputs, show, run_on_click=True, cache_examples=False, label="MNIST test pairs",
                api_visibility="private")
    with gr.Accordion("About", open=False):
        gr.Markdown(logic.about_markdown())

    for box in (first, second):
        box.change(show, [first, second], outputs, trigger_mode="always_last", show_progress="hidden",
                   api_visibility="private")
    compare_button.click(show, [first, second], outputs, api_visibility="private")
    gr.api(compare, api_name="compare")
demo.queue(max_size=QUEUE_SIZE)


if __name__ == "__main__":
    demo.launch(**LAUNCH_OPTIONS)
