"""What the page shows of a `Comparison` (page/compare.py): a headline over all networks, one card
per network (verdict, P(first <= second), its digit reading and, with digit outputs, the picture
of the two readings, and how it answers) and the two 14x14 images the networks see. The cards'
CSS is cards.css, the rest of the page's page.css, both beside this file."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.drawing import BlankDrawing
from ..core.models import VARIANTS
from ..guard import Drawing, Judgement
from .compare import BOXES, Answer, Comparison

HERE = Path(__file__).parent
PAGE_CSS = (HERE / "page.css").read_text()  # the page: its pads, footer and About panel
CARDS_CSS = (HERE / "cards.css").read_text()  # the cards, handed to their HTML component
LEQ, GT = "first ≤ second", "first > second"
# What each card leads with: how the variant works, in plain words (its code name is in the
# folded "how it works" line).
PLAIN_NAMES = {
    "simple_cnn": "Reads each digit, compares in code",
    "shared": "One reader for both, taught only ≤",
    "shared_aux": "One reader for both + digit labels",
    "unshared": "A reader per digit, taught only ≤",
    "unshared_aux": "A reader per digit + digit labels",
}


@dataclass(frozen=True)
class PageView:
    headline: str
    cards: str  # HTML: one card per network
    previews: tuple[np.ndarray | None, np.ndarray | None]  # the 14x14 digits the networks see


def page_view(comparison: Comparison) -> PageView:
    """Everything the page shows of a comparison; a drawing that can't be read becomes the
    headline, and an untouched or cleared box a request for a digit.

    The cards follow the set of networks, each naming its comparison head, the variants that
    failed to load in their places. Where the set's guard doubts a drawing, the headline and
    every card say so, beside the numbers; where the set has no guard, the headline says
    drawings are not judged. When the boxes show a known example, unchanged, the page gives its
    true digits and marks each verdict right or wrong, in place of the guard's doubts: an example
    is a pair of real digits.
    """
    c = comparison
    previews = tuple(enlarge(c.seen[box]) if box in c.seen else None for box in BOXES)
    failed = {name: failed_card(name, why) for name, why in c.missing.items()}
    if not c.loaded:
        return PageView("**No model is loaded**: see below.", "".join(failed.values()), previews)
    if c.problems:
        blank = [box for box, e in c.problems.items() if isinstance(e, BlankDrawing)]
        if len(blank) == len(c.problems):
            text = (
                "Draw a digit in both boxes."
                if len(blank) == 2
                else f"Now draw a digit in the {blank[0]} box."
            )
        else:
            text = "; ".join(
                f"{box} image: {e}"
                for box, e in c.problems.items()
                if not isinstance(e, BlankDrawing)
            )
        return PageView(text, "".join(failed[name] for name in card_order(failed)), previews)
    truth = c.example.digits if c.example else None
    drawings = {} if c.example else c.drawings
    not_judged = None if c.example else c.not_judged
    cards = {
        **failed,
        **{name: card(name, answer, truth, drawings) for name, answer in c.answers.items()},
    }
    verdicts = {name: answer.first_is_leq for name, answer in c.answers.items()}
    return PageView(
        headline(verdicts, truth, drawings, not_judged),
        "".join(cards[name] for name in card_order(cards)),
        previews,
    )


def order_name(leq: bool) -> str:
    return LEQ if leq else GT


def doubt_line(drawings: dict[str, Drawing]) -> str:
    """What the guard says of the drawings it doubts, in its words: 'the second drawing: not a
    digit' / 'the first drawing: unsure, 1 or 7' ('' if none)."""
    parts = []
    for box, d in drawings.items():
        if d.judgement == Judgement.NOT_A_DIGIT:
            parts.append(f"the {box} drawing: {Judgement.NOT_A_DIGIT.value}")
        elif d.judgement == Judgement.UNSURE:
            (a, _), (b, _) = d.digits
            parts.append(f"the {box} drawing: {Judgement.UNSURE.value}, {a} or {b}")
    return "; ".join(parts)


def headline(
    verdicts: dict[str, bool],
    truth: tuple[int, int] | None,
    drawings: dict[str, Drawing] | None = None,
    not_judged: str | None = None,
) -> str:
    """One line over all models: how many say which; with an example, the truth and how many got
    it; first, what the guard doubts about the drawings; last, where they are not judged
    (`not_judged`: why), that they are not."""
    n, leq = len(verdicts), sum(verdicts.values())
    models = "model" if n == 1 else "models"
    if truth is not None:
        a, b = truth
        right = sum(v == (a <= b) for v in verdicts.values())
        says = "says" if right == 1 else "say"
        line = (
            f"Example {a} and {b}: the answer is **{order_name(a <= b)}** "
            f"({a} {'≤' if a <= b else '>'} {b}); "
            + (f"all {n} {models} say so." if right == n else f"{right} of {n} {models} {says} so.")
        )
    elif leq in (0, n):
        line = f"**{order_name(bool(leq))}**: " + (
            f"all {n} models agree." if n > 1 else "the model says so."
        )
    else:

        def says(k):
            return f"{k} says" if k == 1 else f"{k} say"

        line = f"**Split**: {says(leq)} {LEQ}, {says(n - leq)} {GT}."
    if not_judged:
        line += f" *Drawings are not judged: {not_judged}.*"
    said = doubt_line(drawings or {})
    if not said:
        return line
    if any(d.judgement == Judgement.NOT_A_DIGIT for d in drawings.values()):
        line = "Read as digits anyway: " + line.replace("**: ", "**, ", 1)
    return f"**{said[0].upper()}{said[1:]}.** {line}"


def joint_svg(probs: torch.Tensor, cell: int = 14) -> str:
    """(2, 10) digit probabilities -> a 10x10 SVG of p_first(i) p_second(j), row i, column j.

    Cells with i <= j (on and right of the diagonal) are blue, the others orange, each as opaque as
    its probability (square-rooted, so a 1 % cell still shows); the blue cells sum to the mass
    behind "first <= second", which is what the order head outputs as P(first <= second).
    """
    joint = (probs[0][:, None] * probs[1][None, :]).tolist()
    pad, size = 16, 10 * cell
    side = pad + size + 1
    parts = [
        f'<svg class="joint" viewBox="0 0 {side} {side}" width="{side}" height="{side}" '
        'role="img"><title>P(first = row, second = column)</title>'
    ]
    parts += [
        f'<text x="{pad + j * cell + cell / 2}" y="12" class="axis">{j}</text>' for j in range(10)
    ]
    parts += [
        f'<text x="8" y="{pad + i * cell + cell * 0.8}" class="axis">{i}</text>' for i in range(10)
    ]
    parts += [
        f'<rect x="{pad + j * cell}" y="{pad + i * cell}" width="{cell}" height="{cell}" '
        f'class="{"leq" if i <= j else "gt"}" fill-opacity="{p**0.5:.3f}"/>'
        for i, row in enumerate(joint)
        for j, p in enumerate(row)
        if p >= 1e-4
    ]
    # The staircase under the diagonal: the edge of the i <= j triangle.
    steps = " ".join(
        f"{pad + i * cell},{pad + (i + 1) * cell} {pad + (i + 1) * cell},{pad + (i + 1) * cell}"
        for i in range(10)
    )
    parts += [
        f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" class="frame"/>',
        f'<polyline points="{pad},{pad} {steps}" class="edge"/>',
        "</svg>",
    ]
    return "".join(parts)


def head_line(name: str, head: str, members: int = 1) -> str:
    """The detail line: the code name, how many networks answer, and how they turn two 10-way
    outputs into P(first <= second)."""
    ensemble = f"{members} networks trained alike, averaged" if members > 1 else "one network"
    if not VARIANTS[name].pair_loss:
        how = "no pair head: its two digit readings are compared in code (the order rule)"
    elif head == "fc":
        how = (
            "FC head: one fully connected layer, Linear(20, 2), on its two 10-way outputs; "
            "its verdict comes from that layer, so it can disagree with its own digit reading"
        )
    else:
        how = "order head: P = sum over i ≤ j of p_first(i) p_second(j)"
    return f"{name}: {ensemble}; {how}"


def reading_line(probs: torch.Tensor, drawings: dict[str, Drawing]) -> str:
    """'first: 2 (100 %), second: 7 (98 %)', each box's top digit, with the guard's doubt about it:
    for "unsure", this network's probabilities of the guard's two digits."""
    parts = []
    for i, box in enumerate(BOXES):
        value, digit = probs[i].max(0)
        d = drawings.get(box)
        if d and d.judgement == Judgement.NOT_A_DIGIT:
            parts.append(f"{box}: not a digit? (reads <b>{int(digit)}</b>, {value:.0%})")
        elif d and d.judgement == Judgement.UNSURE:
            (a, _), (b, _) = d.digits
            parts.append(f"{box}: <b>{a}</b> ({probs[i, a]:.0%}) or <b>{b}</b> ({probs[i, b]:.0%})")
        else:
            parts.append(f"{box}: <b>{int(digit)}</b> ({value:.0%})")
    return "reads " + ", ".join(parts)


def card(
    name: str,
    answer: Answer,
    truth: tuple[int, int] | None,
    drawings: dict[str, Drawing] | None = None,
) -> str:
    """One network's card: its plain name, verdict (right/wrong with an example), P(first <=
    second), its digit reading with the guard's doubts (or, without digit outputs, those doubts
    alone), the picture of the two readings with its key, and a detail line (code name, networks,
    head)."""
    drawings = drawings or {}
    p, leq = answer.p_leq, answer.first_is_leq
    mark = ""
    if truth is not None:
        right = leq == (truth[0] <= truth[1])
        mark = (
            f' <span class="mark {"right" if right else "wrong"}">'
            f"{'✓ right' if right else '✗ wrong'}</span>"
        )
    lines = [
        f'<div class="card" id="card-{html.escape(name)}">',
        f'<div class="name">{html.escape(PLAIN_NAMES.get(name, name))}</div>',
        f'<div class="verdict">{order_name(leq)}{mark}</div>',
        f'<div class="prob">P(first ≤ second) = {p:.2f}'
        f'<div class="bar"><div style="width:{100 * p:.0f}%"></div></div></div>',
    ]
    if answer.digit_probs is None:
        said = doubt_line(drawings)
        lines.append(
            '<div class="reading">never told what a digit is: no digit reading'
            + (f"; the guard says {html.escape(said)}" if said else "")
            + "</div>"
        )
    else:
        probs = answer.digit_probs
        mass = float((probs[0][:, None] * probs[1][None, :]).triu().sum())
        key = (
            'rows: first digit, columns: second; <span class="key leq">blue</span>: first ≤ '
            f'second (in all {mass:.2f}), <span class="key gt">orange</span>: first > second'
        )
        lines += [
            f'<div class="reading">{reading_line(probs, drawings)}</div>',
            joint_svg(probs),
            f'<div class="caption">{key}</div>',
        ]
    # Folded, so the cards of both sets are the same height whatever their heads' explanations.
    detail = html.escape(head_line(name, answer.head, answer.members))
    lines.append(f'<details class="head"><summary>how it works</summary>{detail}</details>')
    return "".join(lines) + "</div>"


def failed_card(name: str, message: str) -> str:
    return (
        f'<div class="card failed" id="card-{html.escape(name)}">'
        f'<div class="name">{html.escape(PLAIN_NAMES.get(name, name))}</div>'
        f'<div class="reading">{html.escape(name)} not loaded: {html.escape(message)}</div>'
        "</div>"
    )


def card_order(names) -> list[str]:
    """Registry order; names outside the registry (another set of networks) after, as given."""
    rank = {name: i for i, name in enumerate(VARIANTS)}
    return sorted(names, key=lambda name: rank.get(name, len(rank)))


def enlarge(digit: torch.Tensor, factor: int = 12) -> np.ndarray:
    """(14, 14) raw 0-255 -> (14 f, 14 f) uint8, big square pixels: exactly what the networks
    see."""
    pixels = digit.clamp(0, 255).round().to(torch.uint8).numpy()
    return pixels.repeat(factor, 0).repeat(factor, 1)
