"""The page's code in the browser: page.js, beside this file, handed to Gradio as the page's
script (`SCRIPT`), and the calls the page's events make to it."""

from __future__ import annotations

import json
from pathlib import Path

SCRIPT = (Path(__file__).parent / "page.js").read_text()
# A drawing's input event: on, a moment after the stroke, unless the page set the pads itself.
SETTLE = "() => window.digitpair.settle()"
# The longest an example waits for the pads to paint its digits before its answer is asked for.
PAINT_MS = 5000
PAINTED = f"() => window.digitpair.painted({PAINT_MS})"


# An answer asked for (the request's inputs pass through), and landed or failed: page.js counts
# the answers on their way, for Clear and the examples to wait for.
SENDING = "(...inputs) => window.digitpair.sending(inputs)"
LANDED = "() => window.digitpair.landed()"


def sending_drawn(generation: int) -> str:
    """SENDING for an answer to a drawing, whose input at index `generation` is the generation the
    pads were read in: -1 once Clear or an example has set the pads since (page.js)."""
    return f"(...inputs) => window.digitpair.sending(inputs, {generation})"


# The longest Clear or an example waits for the answers on their way before it sets the pads.
LANDING_MS = 5000


def set_pads(first: Path, second: Path) -> str:
    """The call that puts two image files in the pads, from the browser (see page.js's setPads)."""
    return f"() => window.digitpair.setPads({json.dumps([str(first), str(second)])}, {LANDING_MS})"
