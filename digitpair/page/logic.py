"""What the drawing app computes, as pure functions; app.py only wires them to Gradio.

Two sets of the five networks are served (`load_sets`), one at a time (`choose`): ours, which
compare with the order head, and the 2020 report's, whose pair networks compare with its fully
connected head (weights.NETWORKS: "ours", "report"). `compare` is the `/compare` API: two
drawings in, one JSON-ready dict out, {"networks": set, "models": {name: {"p_leq", "first_is_leq",
"digits"}}, "drawings": {box: {"judgement", "digits"}}, "judged": bool, "not_judged": why or None,
"missing": {name: why}} in registry order, "missing" naming the variants of that set that failed
to load. `page_view` is the same computation shaped for the page: a headline, one card per network
(verdict, P(first <= second), its comparison head, its digit reading and, with digit outputs, the
picture of the two readings) and the two 14x14 images the networks see. Both judge the drawings
by one path, `judged_drawings` (the guard beside the weights, digitpair/guard/__init__.py): the API returns
what the page words.
`about_markdown` is the About panel.
"""

from __future__ import annotations

import html
import logging
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .. import guard
from ..core.checkout import ROOT, source_url
from ..core.drawing import DrawingError, mnist_field, pool, preprocess
from ..core.fmt import fmt, md_table
from ..guard import Drawing, Judgement
from ..core.models import DEFAULT_HEAD, VARIANTS, PairNet, Prediction, count_members
from ..lab.records import SUMMARY, UNKNOWN, Summary, read_summary
from ..lab.study import Study
from ..core.weights import NETWORKS, WeightsError
from ..guard.pretrained import load_pretrained

WEIGHTS_DIR = ROOT / "weights"
MODEL_REPO_ENV, MODEL_REVISION_ENV = "DIGITPAIR_MODEL_REPO", "DIGITPAIR_MODEL_REVISION"
BOXES = ("first", "second")
EXAMPLES_DIR = ROOT / "examples"
STUDY = "best"   # the study the About panel reports, and whose main setting weights/ was exported from
LEQ, GT = "first ≤ second", "first > second"
# The page's choice of set, as it names them; keys are weights.NETWORKS'.
CHOICES = {"ours": "Our networks (order head)", "report": "The 2020 report's networks (FC head)"}
DEFAULT_NETWORKS = "ours"
# What each card leads with: how the variant works, in plain words (its code name is in the detail line).
PLAIN_NAMES = {"simple_cnn": "Reads each digit, compares in code",
               "shared": "One reader for both, taught only ≤",
               "shared_aux": "One reader for both + digit labels",
               "unshared": "A reader per digit, taught only ≤",
               "unshared_aux": "A reader per digit + digit labels"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModels:
    models: dict[str, PairNet]   # the variants that loaded, registry order
    errors: dict[str, str]       # {variant: why it did not load}
    source: str
    networks: str = DEFAULT_NETWORKS   # which set: a key of weights.NETWORKS
    judge: guard.Judge | None = None   # the guard fitted for these networks; None: not judged
    unjudged: str = "no guard loaded"  # why not, where judge is None


class ChoiceError(ValueError):
    """`/compare` was asked for a set of networks the app does not have."""


def load_models(source: str | None = None, revision: str | None = None,
                networks: str = DEFAULT_NETWORKS) -> LoadedModels:
    """One set of networks (weights.NETWORKS) from `weights/` by default, from
    $DIGITPAIR_MODEL_REPO when set: a Hub repo id (at $DIGITPAIR_MODEL_REVISION), or a local folder
    of the same layout (`load_pretrained` takes either; a revision applies to Hub repos only).

    Never raises for bad weights: a variant that fails is recorded in `errors`, logged (the server's
    log names it at start-up), and the page and `/compare` say so; so does a guard that is missing,
    damaged or fitted for other networks (drawings are then not judged).
    """
    if source is None and os.environ.get(MODEL_REPO_ENV):
        source, revision = os.environ[MODEL_REPO_ENV], revision or os.environ.get(MODEL_REVISION_ENV) or None
    source = str(source or WEIGHTS_DIR)
    errors: dict[str, str] = {}
    try:
        models = load_pretrained(source, revision=revision, errors=errors, networks=networks)
        judge, unjudged = models.judge, models.unjudged
    except WeightsError as e:   # the whole source is missing, or the Hub repo can't be resolved
        models, errors = {}, {name: str(e) for name in VARIANTS}
        judge, unjudged = None, str(e)
    for name, why in errors.items():
        log.warning("digitpair: variant %s not loaded (%s networks): %s", name, networks, why)
    if judge is None and models:
        log.warning("digitpair: drawings are not judged for the %s networks: %s", networks,
                    unjudged)
    return LoadedModels(dict(models), errors, source, networks, judge, unjudged)


def load_sets(source: str | None = None, revision: str | None = None) -> dict[str, LoadedModels]:
    """Both sets, {"ours": ..., "report": ...}: a set whose folder is missing or broken only has
    its variants in `errors`; the other still serves."""
    return {networks: load_models(source, revision, networks) for networks in NETWORKS}


def choose(sets: dict[str, LoadedModels], networks) -> LoadedModels:
    """The set `networks` names; anything else is a `ChoiceError` listing the choices."""
    if not (isinstance(networks, str) and networks in sets):
        raise ChoiceError(f"networks={networks!r} is not a set of networks here; choose one of "
                          + ", ".join(f"{key!r} ({CHOICES[key]})" for key in sets))
    return sets[networks]


def readers(models: dict[str, PairNet]) -> dict[str, PairNet]:
    """The variants among `models` that read digits (have digit outputs): whose readings the page
    shows and the guard weighs (digitpair/guard/__init__.py)."""
    return {name: model for name, model in models.items() if VARIANTS[name].digit_loss}


def judged_drawings(loaded: LoadedModels, fields: dict[str, torch.Tensor],
                    preds: dict[str, Prediction]) -> dict[str, Drawing]:
    """{box: its Drawing} for the two drawings' fields and the networks' predictions of them: the
    readers' mean digit distribution of each box (each ensemble averaged first, as the cards show
    them), judged by the set's guard; not judged (judgement None) where the set has none.
    The one path of both the page and `/compare`."""
    probs = [pred.digit_probs[0] for name, pred in preds.items() if name in readers(loaded.models)]
    reading = torch.stack(probs).mean(0) if probs else None   # (2, 10)
    if loaded.judge is not None:
        drawings = loaded.judge(torch.stack([fields[b] for b in BOXES]), reading)
    else:
        drawings = guard.unjudged(reading) or [Drawing(None, None)] * len(BOXES)
    return dict(zip(BOXES, drawings))


def fields_of(first, second) -> tuple[dict[str, torch.Tensor], dict[str, DrawingError]]:
    """Both drawings boxed and centred -> ({box: (28, 28) field} for those that worked, {box: why}
    for those that did not). The networks see each field pooled (`drawing.pool`, as `preprocess`
    does); the guard reads the field itself."""
    fields, problems = {}, {}
    for box, value in zip(BOXES, (first, second)):
        try:
            fields[box] = torch.from_numpy(mnist_field(value))
        except DrawingError as e:
            problems[box] = e
    return fields, problems


def uploaded_image(value):
    """An API input, returned as is when its images are files Gradio received and checked.

    Gradio vets and caches a file dict marked as its FileData (what `handle_file` sends: an upload
    or a URL it downloads); a bare path, or a dict without that marker, could name any file on
    the server, so it is refused. A Sketchpad dict is vetted image by image.
    """
    images = ([value.get("composite"), value.get("background")]
              if isinstance(value, dict) and "composite" in value else [value])
    if not all(image is None or (isinstance(image, dict) and isinstance(image.get("path"), str)
                                 and (image.get("meta") or {}).get("_type") == "gradio.FileData")
               for image in images):
        raise DrawingError("send each image as gradio_client's handle_file(path or URL), "
                           "or as a Sketchpad dict {'background', 'layers', 'composite'} of such files")
    return value


def top3(probs: torch.Tensor) -> list[list]:
    """(10,) digit probabilities -> [[digit, prob], x3], most likely first."""
    values, digits = probs.topk(3)
    return [[int(d), float(p)] for d, p in zip(digits, values)]


def model_answers(preds: dict[str, Prediction]) -> dict:
    """The networks' predictions of one pair -> the `/compare` JSON's "models"."""
    out = {}
    for name, pred in preds.items():
        p = float(pred.p_leq[0])
        digits = None if pred.digit_probs is None else {
            box: top3(pred.digit_probs[0, i]) for i, box in enumerate(BOXES)}
        out[name] = {"p_leq": p, "first_is_leq": p >= 0.5, "digits": digits}
    return out


def compare(loaded: LoadedModels, first, second) -> dict:
    """The `/compare` API for one set: which set, its loaded variants' answers, what the guard says
    of each drawing (as the page words it; `"judged": false` and why, where it does not judge),
    and {name: why} of the variants that failed to load. Raises `DrawingError` (bad drawing) or
    `WeightsError` (no model loaded)."""
    if not loaded.models:
        raise WeightsError(f"no model is loaded from {loaded.source} ({loaded.networks!r} networks): "
                           + "; ".join(loaded.errors.values()))
    fields, problems = fields_of(first, second)
    if problems:
        raise DrawingError("; ".join(f"{box} image: {e}" for box, e in problems.items()))
    x = torch.stack([pool(fields[b].numpy()) for b in BOXES])[None]
    preds = {name: model.predict(x) for name, model in loaded.models.items()}
    drawings = judged_drawings(loaded, fields, preds)
    judged = loaded.judge is not None
    return {"networks": loaded.networks, "models": model_answers(preds),
            "drawings": {box: d.to_json() for box, d in drawings.items()}, "judged": judged,
            "not_judged": None if judged else loaded.unjudged, "missing": dict(loaded.errors)}


# --- the page --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """A pair in examples/: `pair<k>_first_<digit>.png` and `pair<k>_second_<digit>.png` name their digits."""
    first: Path
    second: Path

    @property
    def digits(self) -> tuple[int, int]:
        return tuple(int(re.search(r"_(\d)\.png$", p.name).group(1)) for p in (self.first, self.second))

    @property
    def label(self) -> str:
        return "{} and {}".format(*self.digits)

    @cached_property
    def pair(self) -> torch.Tensor:
        """(2, 14, 14): what the networks see of it."""
        return torch.stack([preprocess(str(p)) for p in (self.first, self.second)])


# The most a pooled pixel (0-255) of an example may move on its way through a canvas and still be
# that example; a stroke added to a digit moves its pixels by far more.
SAME_EXAMPLE = 8.0


def known_example(pair: torch.Tensor, known) -> Example | None:
    """The example whose digits `pair` (2, 14, 14) shows, if any: the page can then say the truth."""
    return next((e for e in known if (e.pair - pair).abs().max() <= SAME_EXAMPLE), None)


def examples(folder: Path = EXAMPLES_DIR) -> list[Example]:
    firsts = sorted(folder.glob("pair*_first_[0-9].png"))
    return [Example(f, next(folder.glob(f.name.split("_first_")[0] + "_second_[0-9].png"))) for f in firsts]


def order_name(leq: bool) -> str:
    return LEQ if leq else GT


def is_blank(problem: DrawingError) -> bool:
    """An untouched or cleared box: the page asks for a digit instead of reporting an error."""
    return str(problem).startswith(("nothing drawn", "no ink found"))


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


def headline(verdicts: dict[str, bool], truth: tuple[int, int] | None,
             drawings: dict[str, Drawing] | None = None, unjudged: str = "") -> str:
    """One line over all models: how many say which; with an example, the truth and how many got
    it; first, what the guard doubts about the drawings; last, where they are not judged
    (`unjudged`: why), that they are not."""
    n, leq = len(verdicts), sum(verdicts.values())
    models = "model" if n == 1 else "models"
    if truth is not None:
        a, b = truth
        right = sum(v == (a <= b) for v in verdicts.values())
        line = (f"Example {a} and {b}: the answer is **{order_name(a <= b)}** ({a} {'≤' if a <= b else '>'} {b}); "
                + (f"all {n} {models} say so." if right == n else f"{right} of {n} {models} {'says' if right == 1 else 'say'} so."))
    elif leq in (0, n):
        line = f"**{order_name(bool(leq))}**: " + (f"all {n} models agree." if n > 1 else "the model says so.")
    else:
        says = lambda k: f"{k} says" if k == 1 else f"{k} say"
        line = f"**Split**: {says(leq)} {LEQ}, {says(n - leq)} {GT}."
    if unjudged:
        line += f" *Drawings are not judged: {unjudged}.*"
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
    parts = [f'<svg class="joint" viewBox="0 0 {pad + size + 1} {pad + size + 1}" width="{pad + size + 1}" '
             f'height="{pad + size + 1}" role="img"><title>P(first = row, second = column)</title>']
    parts += [f'<text x="{pad + j * cell + cell / 2}" y="12" class="axis">{j}</text>' for j in range(10)]
    parts += [f'<text x="8" y="{pad + i * cell + cell * 0.8}" class="axis">{i}</text>' for i in range(10)]
    parts += [f'<rect x="{pad + j * cell}" y="{pad + i * cell}" width="{cell}" height="{cell}" '
              f'class="{"leq" if i <= j else "gt"}" fill-opacity="{p ** 0.5:.3f}"/>'
              for i, row in enumerate(joint) for j, p in enumerate(row) if p >= 1e-4]
    # The staircase under the diagonal: the edge of the i <= j triangle.
    steps = " ".join(f"{pad + i * cell},{pad + (i + 1) * cell} {pad + (i + 1) * cell},{pad + (i + 1) * cell}"
                     for i in range(10))
    parts += [f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" class="frame"/>',
              f'<polyline points="{pad},{pad} {steps}" class="edge"/>', "</svg>"]
    return "".join(parts)


def head_line(name: str, head: str, members: int = 1) -> str:
    """The detail line: the code name, how many networks answer, and how they turn two 10-way
    outputs into P(first <= second)."""
    ensemble = f"{members} networks trained alike, averaged" if members > 1 else "one network"
    if not VARIANTS[name].pair_loss:
        how = "no pair head: its two digit readings are compared in code (the order rule)"
    elif head == "fc":
        how = ("FC head: one fully connected layer, Linear(20, 2), on its two 10-way outputs; its verdict comes "
               "from that layer, so it can disagree with its own digit reading")
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


def card(name: str, pred: Prediction, truth: tuple[int, int] | None, head: str = DEFAULT_HEAD,
         members: int = 1, drawings: dict[str, Drawing] | None = None) -> str:
    """One model's card: its plain name, verdict (right/wrong with an example), P(first <= second),
    its digit reading with the guard's doubts (or, without digit outputs, those doubts alone), the
    picture of the two readings with its key, and a detail line (code name, networks, head)."""
    drawings = drawings or {}
    p = float(pred.p_leq[0])
    leq = p >= 0.5
    mark = ""
    if truth is not None:
        right = leq == (truth[0] <= truth[1])
        mark = f' <span class="mark {"right" if right else "wrong"}">{"✓ right" if right else "✗ wrong"}</span>'
    lines = [f'<div class="card" id="card-{html.escape(name)}">',
             f'<div class="name">{html.escape(PLAIN_NAMES.get(name, name))}</div>',
             f'<div class="verdict">{order_name(leq)}{mark}</div>',
             f'<div class="prob">P(first ≤ second) = {p:.2f}'
             f'<div class="bar"><div style="width:{100 * p:.0f}%"></div></div></div>']
    if pred.digit_probs is None:
        said = doubt_line(drawings)
        lines.append('<div class="reading">never told what a digit is: no digit reading'
                     + (f'; the guard says {html.escape(said)}' if said else "") + "</div>")
    else:
        probs = pred.digit_probs[0]
        mass = float((probs[0][:, None] * probs[1][None, :]).triu().sum())
        key = (f'rows: first digit, columns: second; <span class="key leq">blue</span>: first ≤ second '
               f'(in all {mass:.2f}), <span class="key gt">orange</span>: first > second')
        lines += [f'<div class="reading">{reading_line(probs, drawings)}</div>', joint_svg(probs),
                  f'<div class="caption">{key}</div>']
    # Folded, so the cards of both sets are the same height whatever their heads' explanations.
    lines.append(f'<details class="head"><summary>how it works</summary>{html.escape(head_line(name, head, members))}'
                 '</details>')
    return "".join(lines) + "</div>"


def failed_card(name: str, message: str) -> str:
    return (f'<div class="card failed" id="card-{html.escape(name)}">'
            f'<div class="name">{html.escape(PLAIN_NAMES.get(name, name))}</div>'
            f'<div class="reading">{html.escape(name)} not loaded: {html.escape(message)}</div></div>')


def card_order(names) -> list[str]:
    """Registry order; names outside the registry (another set of networks) after, as given."""
    rank = {name: i for i, name in enumerate(VARIANTS)}
    return sorted(names, key=lambda name: rank.get(name, len(rank)))


@dataclass(frozen=True)
class PageView:
    headline: str
    cards: str                                                   # HTML: one card per network
    previews: tuple[np.ndarray | None, np.ndarray | None]       # the 14x14 digits the networks see


def page_view(loaded: LoadedModels, first, second, known: tuple[Example, ...] = ()) -> PageView:
    """Everything the page shows for two drawings; a bad drawing becomes the headline, never an exception.

    `loaded` is one set of networks ({name: model} and the names that failed); the cards follow it,
    each naming its comparison head. Where the set's guard doubts a drawing, the headline and every
    card say so, beside the numbers; where the set has no guard, the headline says drawings are
    not judged.
    When the two boxes show one of the `known` examples, unchanged, the page gives its true digits and
    marks each verdict right or wrong. (Recognised by what the networks see, not by which event came
    last: the editor reports loading an example and clearing a box as drawing.)
    """
    fields, problems = fields_of(first, second)
    digits = {box: pool(field.numpy()) for box, field in fields.items()}
    previews = tuple(enlarge(digits[b]) if b in digits else None for b in BOXES)
    failed = {name: failed_card(name, message) for name, message in loaded.errors.items()}
    if not loaded.models:
        return PageView("**No model is loaded**: see below.", "".join(failed.values()), previews)
    if problems:
        blank = [box for box, e in problems.items() if is_blank(e)]
        if len(blank) == len(problems):
            text = "Draw a digit in both boxes." if len(blank) == 2 else f"Now draw a digit in the {blank[0]} box."
        else:
            text = "; ".join(f"{box} image: {e}" for box, e in problems.items() if not is_blank(e))
        return PageView(text, "".join(failed[n] for n in card_order(failed)), previews)
    x = torch.stack([digits[b] for b in BOXES])[None]
    example = known_example(x[0], known)
    truth = example.digits if example else None
    preds = {name: model.predict(x) for name, model in loaded.models.items()}
    # An example is a digit pair, its truth known: not judged.
    drawings = {} if example else judged_drawings(loaded, fields, preds)
    unjudged = "" if example or loaded.judge is not None else loaded.unjudged
    cards = {**failed, **{name: card(name, pred, truth, loaded.models[name].head_name,
                                     count_members(loaded.models[name]), drawings)
                          for name, pred in preds.items()}}
    verdicts = {name: float(pred.p_leq[0]) >= 0.5 for name, pred in preds.items()}
    return PageView(headline(verdicts, truth, drawings, unjudged),
                    "".join(cards[n] for n in card_order(cards)), previews)


def enlarge(digit: torch.Tensor, factor: int = 12) -> np.ndarray:
    """(14, 14) raw 0-255 -> (14 f, 14 f) uint8, big square pixels: exactly what the networks see."""
    pixels = digit.clamp(0, 255).round().to(torch.uint8).numpy()
    return pixels.repeat(factor, 0).repeat(factor, 1)


# --- the About panel --------------------------------------------------------------------------

def _cell(row: Summary, key: str) -> str:
    """'98.0 ± 0.4' from a summary row's <key>_mean and <key>_std; 'unknown' where no mean is recorded."""
    mean, std = getattr(row, f"{key}_mean"), getattr(row, f"{key}_std")
    if mean in (None, UNKNOWN):
        return UNKNOWN
    return fmt(mean, None if std in (None, UNKNOWN) else std, digits=1)


def report_files(root: Path = ROOT) -> list[Path]:
    """The study reports the About panel links to, where this copy has them."""
    return [p for p in (root / "train" / "results" / name / "report.md" for name in (STUDY, "seed2020")) if p.is_file()]


# What the page's "about" section says first: the networks and what the study found.
ABOUT = ["Five small convolutional networks compare the two digits. `simple_cnn` only learns to read "
         "digits and compares its two readings; the other four learn from the ≤ answers, with one encoder "
         "shared by both digits (`shared`) or one each (`unshared`), and the `_aux` ones are also told "
         "which digits they see. Each was trained on 1000 MNIST pairs of 14x14 digits, many times over "
         "with fresh data and initialisation.", "",
         "What the study found: being told the digits matters most (the `_aux` networks and `simple_cnn` "
         "lead); without digit labels, one shared encoder beats two separate ones.", "",
         "The choice above the cards switches between two sets of these five networks, both trained with "
         "our recipe: ours, whose pair networks compare their two 10-way outputs with the order head "
         "(P(a ≤ b) = sum over i ≤ j of p_a(i) p_b(j)), and the 2020 report's, which compare them with "
         "one fully connected layer, Linear(20, 2); their accuracies are side by side in "
         "`train/results/best/report.md`'s `head` table, and the report's networks under its own "
         "protocol in `train/results/seed2020`. Where a card's \"how it works\" says \"5 networks trained alike, averaged\", that variant "
         "answers as an ensemble: five networks trained on the same pairs from different initialisations, "
         "their digit distributions averaged (for `shared` and `unshared`, their P)."]


def about_markdown(root: Path = ROOT, link=None, record: dict | None = None) -> str:
    """What the networks are, what the study found (its summary.csv, main setting), what the guard
    is and its measured rates (`record`, the served guard's guard.json, if any) and links.

    `link(path)` turns a file of this copy into a URL; by default a Hugging Face Space links its own
    files ($SPACE_ID), and elsewhere files are named, not linked.
    """
    space = os.environ.get("SPACE_ID")
    if link is None:
        link = (lambda p: f"https://huggingface.co/spaces/{space}/blob/main/{p.relative_to(root).as_posix()}") \
            if space else None
    lines = [*ABOUT, *results_table(root), *guard_note(record)]
    links = about_links(root, link, space)
    lines += ["", "More: " + (", ".join(links) if links else "the study's reports are not in this copy") + "."]
    return "\n".join(lines)


def results_table(root: Path) -> list[str]:
    """The study's test accuracies: its main setting per variant, and beside it any ensemble setting."""
    lines = []
    summary = root / "train" / "results" / STUDY / SUMMARY
    rows = read_summary(summary) if summary.is_file() else []
    study_file = root / "train" / "studies" / f"{STUDY}.toml"
    main = Study.load(study_file).main if study_file.is_file() else None
    if not rows:
        return lines
    # The main setting (one network per variant), and beside it any ensemble setting of the study.
    ensembles, by_setting = [], {}
    if main:
        ensembles = sorted({r.setting: r.members for r in rows if r.members != UNKNOWN and r.members > 1}.items())
        by_setting = {setting: {r.variant: r for r in rows if r.setting == setting}
                      for setting in (main, *(name for name, _ in ensembles))}
        rows = list(by_setting[main].values())
    by_name = {r.variant: r for r in rows}
    extra = [(f"pair accuracy, ensemble of {k} (`{setting}`)", by_setting[setting]) for setting, k in ensembles]
    lines += ["", "Test accuracy (%) on pairs and, for the networks told the digits, on single digits: "
              f"mean ± std over n rounds (study `{STUDY}`" + (f", setting `{main}`" if main else "") + "):", ""]
    lines += md_table(["network", "what it is", "pair accuracy", *(h for h, _ in extra), "digit accuracy", "n"],
                      [[f"`{name}`", VARIANTS[name].description, _cell(by_name[name], "test_acc"),
                        *(_cell(other[name], "test_acc") if name in other else "-" for _, other in extra),
                        _cell(by_name[name], "test_digit_acc") if VARIANTS[name].digit_loss else "-",
                        str(by_name[name].rounds)]
                       for name in VARIANTS if name in by_name])
    return lines


def guard_record(sets: dict[str, LoadedModels]) -> dict | None:
    """The served guard's record (guard.json), from the first set that has one."""
    return next((loaded.judge.guard.record for loaded in sets.values() if loaded.judge is not None),
                None)


def guard_note(record: dict | None) -> list[str]:
    """What the guard is, and its rates as its record states them (nothing where it states none)."""
    try:
        rates = guard.rates_markdown(record or {})
    except (KeyError, TypeError, AttributeError):   # a record whose rates this code can't read
        rates = ""
    if not rates:
        return []
    target = record.get("fitted_on", {}).get("budget", {}).get("target", "?")
    return ["", "When the page says a drawing is 'not a digit' or 'unsure, 1 or 7': the networks "
            "give every drawing some digit, often with a high probability, so a small network of "
            "its own, the guard, judges each drawing. It reads digits and has an eleventh answer, "
            "'not a digit', learned from pen-drawn letters and symbols and from drawn dots, blobs, "
            "scribbles, shapes, doodles and crossed-out digits; where it gives that answer more "
            "than a limit, the page says 'not a digit', and where it doubts the digit the networks "
            f"read (or reads another), 'unsure', naming both. The limits are chosen so that at most "
            f"{target} % of the real digits the networks read right are flagged (a margin under "
            "the goal's 1 %), on writers and kinds of drawing the guard did not learn from "
            "(`digitpair-train fit-guard`, `digitpair/guard/__init__.py`); measured on others still:",
            "", rates]


def about_links(root: Path, link, space: str | None) -> list[str]:
    links = [f"[{p.relative_to(root).as_posix()}]({link(p)})" if link else f"`{p.relative_to(root).as_posix()}`"
             for p in report_files(root)]
    repo = os.environ.get(MODEL_REPO_ENV)
    if repo:
        links.append(f"[the weights on the Hub](https://huggingface.co/{repo})")
    source = source_url(root)
    if source:
        links.append(f"[the source code]({source})")
    elif space:
        links.append(f"[the source code](https://huggingface.co/spaces/{space}/tree/main)")
    return links
