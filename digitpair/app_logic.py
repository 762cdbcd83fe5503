"""What the drawing app computes, as pure functions; app.py only wires them to Gradio.

`compare` is the `/compare` API: two drawings in, one JSON-ready dict out,
{"models": {name: {"p_leq", "first_is_leq", "digits"}}, "missing": {name: why}} in registry
order, "missing" naming the variants that failed to load. `page_view` is the
same computation shaped for the page: a consensus line, a verdict and a note per variant, and
the two 14x14 images the networks see.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .drawing import DrawingError, preprocess
from .weights import WeightsError, load_pretrained
from .models import VARIANTS, PairNet

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "weights"
MODEL_REPO_ENV, MODEL_REVISION_ENV = "DIGITPAIR_MODEL_REPO", "DIGITPAIR_MODEL_REVISION"
BOXES = ("first", "second")
LEQ, GT = "first ≤ second", "first > second"
# The columns of the study's summary.csv the About panel shows (when present), out of its ~15.
HEADLINE_COLUMNS = ("setting", "variant", "rounds", "test_acc_mean", "test_acc_std", "test_digit_acc_mean",
                    "test_digit_acc_std", "parameters")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModels:
    models: dict[str, PairNet]   # the variants that loaded, registry order
    errors: dict[str, str]       # {variant: why it did not load}
    source: str


def load_models(source: str | None = None, revision: str | None = None) -> LoadedModels:
    """`weights/` by default, the Hub repo in $DIGITPAIR_MODEL_REPO (at $DIGITPAIR_MODEL_REVISION) when set.

    Never raises for bad weights: a variant that fails is recorded in `errors`, logged (the server's
    log names it at start-up), and the page and `/compare` say so.
    """
    if source is None and os.environ.get(MODEL_REPO_ENV):
        source, revision = os.environ[MODEL_REPO_ENV], revision or os.environ.get(MODEL_REVISION_ENV) or None
    source = str(source or WEIGHTS_DIR)
    errors: dict[str, str] = {}
    try:
        models = load_pretrained(source, revision=revision, errors=errors)
    except WeightsError as e:   # the whole source is missing, or the Hub repo can't be resolved
        models, errors = {}, {name: str(e) for name in VARIANTS}
    for name, why in errors.items():
        log.warning("digitpair: variant %s not loaded: %s", name, why)
    return LoadedModels(models, errors, source)


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
    """The `/compare` API: the loaded variants' answers, and {name: why} of those that failed to load.
    Raises `DrawingError` (bad drawing) or `WeightsError` (no model loaded)."""
    if not loaded.models:
        raise WeightsError(f"no model is loaded from {loaded.source}: " + "; ".join(loaded.errors.values()))
    digits, problems = preprocess_pair(first, second)
    if problems:
        raise DrawingError("; ".join(problems))
    result = predict(loaded.models, torch.stack([digits[b] for b in BOXES])[None])
    return {**result, "missing": dict(loaded.errors)}


# --- the page --------------------------------------------------------------------------------

def consensus(result: dict) -> str:
    """One line over all variants: agreement and the mean probability."""
    entries = list(result["models"].values())
    leq = sum(e["first_is_leq"] for e in entries)
    mean = sum(e["p_leq"] for e in entries) / len(entries)
    if leq in (0, len(entries)):
        verdict = LEQ if leq else GT
        return f"**{verdict}**: all {len(entries)} models agree (mean P(first ≤ second) = {mean:.2f})"
    return (f"**split**: {leq} of {len(entries)} models say {LEQ}, {len(entries) - leq} say {GT} "
            f"(mean P(first ≤ second) = {mean:.2f})")


def verdict(entry: dict) -> dict[str, float]:
    """A `gr.Label` value: both verdicts with their probabilities."""
    return {LEQ: entry["p_leq"], GT: 1.0 - entry["p_leq"]}


def digits_note(entry: dict) -> str:
    if entry["digits"] is None:
        return "*no digit head: trained on the order only, so it never says which digits it sees*"
    return "  \n".join(
        f"{box}: " + " · ".join(f"**{d}** {p:.0%}" if i == 0 else f"{d} {p:.0%}"
                                for i, (d, p) in enumerate(entry["digits"][box]))
        for box in BOXES)


def enlarge(digit: torch.Tensor, factor: int = 12) -> np.ndarray:
    """(14, 14) raw 0-255 -> (14 f, 14 f) uint8, big square pixels: exactly what the networks see."""
    pixels = digit.clamp(0, 255).round().to(torch.uint8).numpy()
    return pixels.repeat(factor, 0).repeat(factor, 1)


@dataclass(frozen=True)
class PageView:
    headline: str
    verdicts: dict[str, dict | None]       # per variant, registry order; None: nothing to show
    notes: dict[str, str]                  # per variant: digit guesses, or why there are none
    previews: tuple[np.ndarray | None, np.ndarray | None]


def page_view(loaded: LoadedModels, first, second) -> PageView:
    """Everything the page shows for two drawings; a bad drawing becomes the headline, never an exception."""
    digits, problems = preprocess_pair(first, second)
    previews = tuple(enlarge(digits[b]) if b in digits else None for b in BOXES)
    verdicts = dict.fromkeys(VARIANTS)
    notes = {name: f"**not loaded**: {message}" for name, message in loaded.errors.items()}
    if not loaded.models:
        headline = "**No model is loaded**: see the notes below."
    elif problems:
        headline = "; ".join(problems)
    else:
        result = predict(loaded.models, torch.stack([digits[b] for b in BOXES])[None])
        headline = consensus(result)
        for name, entry in result["models"].items():
            verdicts[name], notes[name] = verdict(entry), digits_note(entry)
    return PageView(headline, verdicts, {name: notes.get(name, "") for name in VARIANTS}, previews)


def about_markdown(root: Path = ROOT) -> str:
    """What the five variants are, the study's headline table (read from its summary.csv) and links."""
    lines = ["The five variants (`digitpair.VARIANTS`), each trained on 1000 MNIST pairs of 14x14 digits:", "",
             "| variant | what it is |", "| --- | --- |"]
    lines += [f"| `{name}` | {v.description} |" for name, v in VARIANTS.items()]
    results = root / "train" / "results"
    summary = results / "best" / "summary.csv"
    if summary.is_file():
        with summary.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if rows:
            columns = [c for c in HEADLINE_COLUMNS if c in rows[0]] or list(rows[0])
            lines += ["", "The study's headline numbers (`train/results/best/summary.csv`; accuracies in %):", "",
                      "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    reports = [p.relative_to(root).as_posix() for p in (results / "best" / "report.md",
                                                        results / "seed2020" / "report.md") if p.is_file()]
    space = os.environ.get("SPACE_ID")   # set by Hugging Face Spaces: link the files of the Space's repo
    links = [f"[{p}](https://huggingface.co/spaces/{space}/blob/main/{p})" if space else f"`{p}`" for p in reports]
    lines += ["", "Full results: " + (", ".join(links) if links else
                                      "the study's reports go to `train/results/` (none in this copy yet)") + "."]
    return "\n".join(lines)
