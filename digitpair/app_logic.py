"""What the drawing app computes, as pure functions; app.py only wires them to Gradio.

Two sets of the five networks are served (`load_sets`), one at a time (`choose`): ours, which
compare with the order head, and the 2020 report's, whose pair networks compare with its fully
connected head (weights.NETWORKS: "ours", "report"). `compare` is the `/compare` API: two
drawings in, one JSON-ready dict out, {"networks": set, "models": {name: {"p_leq", "first_is_leq",
"digits"}}, "missing": {name: why}} in registry order, "missing" naming the variants of that set
that failed to load. `page_view` is the same computation shaped for the page: a headline, one card
per network (verdict, P(first <= second), its comparison head, its digit reading and, with digit
outputs, the picture of the two readings) and the two 14x14 images the networks see.
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

from . import abstain
from .cards import ROOT, source_url
from .drawing import DrawingError, preprocess
from .fmt import fmt, md_table
from .models import DEFAULT_HEAD, VARIANTS, DigitFeatures, PairNet, Prediction, count_members, predict_and_read
from .records import SUMMARY, UNKNOWN, Summary, read_summary
from .study import Study
from .weights import NETWORKS, WeightsError, load_pretrained

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
    rule: abstain.Rule | None = None   # when to doubt its digits; None: not chosen for these networks


class ChoiceError(ValueError):
    """`/compare` was asked for a set of networks the app does not have."""


def load_models(source: str | None = None, revision: str | None = None,
                networks: str = DEFAULT_NETWORKS) -> LoadedModels:
    """One set of networks (weights.NETWORKS) from `weights/` by default, from
    $DIGITPAIR_MODEL_REPO when set: a Hub repo id (at $DIGITPAIR_MODEL_REVISION), or a local folder
    of the same layout (`load_pretrained` takes either; a revision applies to Hub repos only).

    Never raises for bad weights: a variant that fails is recorded in `errors`, logged (the server's
    log names it at start-up), and the page and `/compare` say so.
    """
    if source is None and os.environ.get(MODEL_REPO_ENV):
        source, revision = os.environ[MODEL_REPO_ENV], revision or os.environ.get(MODEL_REVISION_ENV) or None
    source = str(source or WEIGHTS_DIR)
    errors: dict[str, str] = {}
    try:
        models = load_pretrained(source, revision=revision, errors=errors, networks=networks)
    except WeightsError as e:   # the whole source is missing, or the Hub repo can't be resolved
        models, errors = {}, {name: str(e) for name in VARIANTS}
    for name, why in errors.items():
        log.warning("digitpair: variant %s not loaded (%s networks): %s", name, networks, why)
    rule, why = abstain.rule_for(abstain.load_rules(), networks, readers(models))
    if rule is None and models:
        log.warning("digitpair: the page will not say 'not a digit' for the %s networks: %s", networks, why)
    return LoadedModels(models, errors, source, networks, rule)


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
    judges (digitpair/abstain.py)."""
    return {name: model for name, model in models.items() if VARIANTS[name].digit_loss}


def preprocess_pair(first, second) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Both drawings -> ({box: (14, 14) tensor} for those that worked, [a message per box that did not])."""
    digits, problems = {}, []
    for box, value in zip(BOXES, (first, second)):
        try:
            digits[box] = preprocess(value)
        except DrawingError as e:
            problems.append(f"{box} image: {e}")
    return digits, problems


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


def predict(models: dict[str, PairNet], x: torch.Tensor) -> dict:
    """(1, 2, 14, 14) raw pair -> the `/compare` JSON."""
    out = {}
    for name, model in models.items():
        pred = model.predict(x)
        p = float(pred.p_leq[0])
        digits = None if pred.digit_probs is None else {
            box: top3(pred.digit_probs[0, i]) for i, box in enumerate(BOXES)}
        out[name] = {"p_leq": p, "first_is_leq": p >= 0.5, "digits": digits}
    return {"models": out}


def compare(loaded: LoadedModels, first, second) -> dict:
    """The `/compare` API for one set: which set, its loaded variants' answers, and {name: why} of
    those that failed to load. Raises `DrawingError` (bad drawing) or `WeightsError` (no model loaded)."""
    if not loaded.models:
        raise WeightsError(f"no model is loaded from {loaded.source} ({loaded.networks!r} networks): "
                           + "; ".join(loaded.errors.values()))
    digits, problems = preprocess_pair(first, second)
    if problems:
        raise DrawingError("; ".join(problems))
    result = predict(loaded.models, torch.stack([digits[b] for b in BOXES])[None])
    return {"networks": loaded.networks, **result, "missing": dict(loaded.errors)}


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


@dataclass(frozen=True)
class Doubt:
    """What the page says about one drawing: `kind` is abstain.DIGIT, UNSURE or NOT_A_DIGIT;
    `digits` the readers' two likeliest, likeliest first."""
    kind: str
    digits: tuple[int, int]


def doubts(loaded: LoadedModels, x: torch.Tensor, reads: dict[str, DigitFeatures]) -> dict[str, Doubt]:
    """{box: its Doubt} for the drawings x (1, 2, 14, 14), judged by the set's rule on what its
    readers' networks make of them (`reads`, models.predict_and_read's); {} where the set has no
    rule (abstain.rule_for) or no reader loaded."""
    if loaded.rule is None or not reads:
        return {}
    ev = abstain.evidence(x, reads, loaded.rule.stats)
    return {box: Doubt(str(kind), tuple(int(d) for d in ev.digits[i]))
            for i, (box, kind) in enumerate(zip(BOXES, abstain.judge(loaded.rule, ev)))}


def doubt_line(doubt: dict[str, Doubt]) -> str:
    """'The second drawing does not look like a digit.' / 'Not sure of the first digit: 1 or 7?' ('' if none)."""
    parts = []
    for box, d in doubt.items():
        if d.kind == abstain.NOT_A_DIGIT:
            parts.append(f"the {box} drawing does not look like a digit")
        elif d.kind == abstain.UNSURE:
            parts.append(f"the {box} digit could be {d.digits[0]} or {d.digits[1]}")
    return "; ".join(parts)


def headline(verdicts: dict[str, bool], truth: tuple[int, int] | None, doubt: dict[str, Doubt] | None = None) -> str:
    """One line over all models: how many say which; with an example, the truth and how many got
    it; first, what the readers doubt about the drawings."""
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
    said = doubt_line(doubt or {})
    if not said:
        return line
    if any(d.kind == abstain.NOT_A_DIGIT for d in doubt.values()):
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


def reading_line(probs: torch.Tensor, doubt: dict[str, Doubt]) -> str:
    """'first: 2 (100 %), second: 7 (98 %)', each box's top digit, with the page's doubt about it."""
    parts = []
    for i, box in enumerate(BOXES):
        values, digits = probs[i].topk(2)
        d = doubt.get(box)
        if d and d.kind == abstain.NOT_A_DIGIT:
            parts.append(f"{box}: not a digit? (reads <b>{int(digits[0])}</b>, {values[0]:.0%})")
        elif d and d.kind == abstain.UNSURE:
            parts.append(f"{box}: <b>{int(digits[0])}</b> ({values[0]:.0%}) or <b>{int(digits[1])}</b> ({values[1]:.0%})")
        else:
            parts.append(f"{box}: <b>{int(digits[0])}</b> ({values[0]:.0%})")
    return "reads " + ", ".join(parts)


def card(name: str, pred: Prediction, truth: tuple[int, int] | None, head: str = DEFAULT_HEAD,
         members: int = 1, doubt: dict[str, Doubt] | None = None) -> str:
    """One model's card: its plain name, verdict (right/wrong with an example), P(first <= second),
    its digit reading with the page's doubts (or, without digit outputs, those doubts alone), the
    picture of the two readings with its key, and a detail line (code name, networks, head)."""
    doubt = doubt or {}
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
        said = doubt_line(doubt)
        lines.append('<div class="reading">never told what a digit is: no digit reading'
                     + (f'; the readers say {html.escape(said)}' if said else "") + "</div>")
    else:
        probs = pred.digit_probs[0]
        mass = float((probs[0][:, None] * probs[1][None, :]).triu().sum())
        key = (f'rows: first digit, columns: second; <span class="key leq">blue</span>: first ≤ second '
               f'(in all {mass:.2f}), <span class="key gt">orange</span>: first > second')
        lines += [f'<div class="reading">{reading_line(probs, doubt)}</div>', joint_svg(probs),
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
    each naming its comparison head. Where the set's rule doubts a drawing, the headline and every
    card say so, beside the numbers.
    When the two boxes show one of the `known` examples, unchanged, the page gives its true digits and
    marks each verdict right or wrong. (Recognised by what the networks see, not by which event came
    last: the editor reports loading an example and clearing a box as drawing.)
    """
    digits, problems = {}, {}
    for box, value in zip(BOXES, (first, second)):
        try:
            digits[box] = preprocess(value)
        except DrawingError as e:
            problems[box] = e
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
    # An example is a digit pair, its truth known: not judged. The readers' one pass gives both
    # their predictions and what the judgement reads.
    judged = {} if example or loaded.rule is None else readers(loaded.models)
    both = {name: predict_and_read(model, x) for name, model in judged.items()}
    preds = {name: both[name][0] if name in both else model.predict(x) for name, model in loaded.models.items()}
    doubt = doubts(loaded, x, {name: features for name, (_, features) in both.items()})
    cards = {**failed, **{name: card(name, pred, truth, loaded.models[name].head_name,
                                     count_members(loaded.models[name]), doubt) for name, pred in preds.items()}}
    verdicts = {name: float(pred.p_leq[0]) >= 0.5 for name, pred in preds.items()}
    return PageView(headline(verdicts, truth, doubt), "".join(cards[n] for n in card_order(cards)), previews)


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


def about_markdown(root: Path = ROOT, link=None) -> str:
    """What the networks are, what the study found (its summary.csv, main setting) and links.

    `link(path)` turns a file of this copy into a URL; by default a Hugging Face Space links its own
    files ($SPACE_ID), and elsewhere files are named, not linked.
    """
    space = os.environ.get("SPACE_ID")
    if link is None:
        link = (lambda p: f"https://huggingface.co/spaces/{space}/blob/main/{p.relative_to(root).as_posix()}") \
            if space else None
    lines = [*ABOUT, *results_table(root), *abstain_note(root)]
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


def abstain_note(root: Path) -> list[str]:
    """When and how often the page declines a drawing (the abstain rules measured in benchmarks/)."""
    lines = []
    rules = abstain.load_rules(root / "benchmarks" / abstain.RULES_FILE.name)
    if rules.get("sets"):
        lines += ["", "When the page says a drawing \"does not look like a digit\" or \"could be 1 or 7\": the networks "
                  "give every drawing some digit, often with a high probability, so the page also checks how sure "
                  "the digit readers and each of their networks are, how far the drawing lies from the training "
                  "digits in the networks' own features, and whether it is shaped like handwriting: mostly solid "
                  "ink or very wide strokes (a dot, a blob), ink in several pieces, or a shape no mix of the "
                  "training digits' main shapes, or of the main shapes of the digit it reads, comes near; and all "
                  "of these weighed together in one score, fitted to tell real digits from drawn non-digits. The "
                  "limits and that score were chosen on validation digits (MNIST training digits no network trained on, the same "
                  "digits redrawn with the pad's pen, USPS, UCI) and drawn non-digits "
                  "(`benchmarks/not_a_digit.py`); measured on the half not used to choose them:", "", abstain.rates_markdown(rules)]
    return lines


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
