"""Two drawings compared by one set of networks: the one path of the page and of `/compare`.

drawing -> field -> reading -> judgement: each drawing is boxed and centred as MNIST's digits
(`drawing.mnist_field`) and pooled to the 14x14 the networks see; every loaded network of the set
answers for the pair; the set's guard judges each drawing from its field and the mean digit
reading of the variants with digit outputs. `compare` returns all of it as one `Comparison`.
`/compare`'s JSON is that comparison as JSON (`Comparison.to_json`), and the page's view is drawn
from the same comparison (page/view.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import guard
from ..core.drawing import DrawingError, mnist_field, pool
from ..core.models import VARIANTS, count_members
from ..core.weights import WeightsError
from ..guard import Drawing
from .examples import Example, known_example
from .served import NetworkSet

BOXES = ("first", "second")


@dataclass(frozen=True)
class Answer:
    """One network's answer for the pair: P(first <= second), its digit distributions where it
    has digit outputs, and how it answers (its comparison head, how many networks average)."""

    p_leq: float
    digit_probs: torch.Tensor | None  # (2, 10): the first box's, the second's; None: no digits
    head: str  # models.HEADS: "order" or "fc"
    members: int  # networks averaged into it (an ensemble's), else 1

    @property
    def first_is_leq(self) -> bool:
        return self.p_leq >= 0.5

    def to_json(self) -> dict:
        digits = (
            None
            if self.digit_probs is None
            else {box: top3(self.digit_probs[i]) for i, box in enumerate(BOXES)}
        )
        return {"p_leq": self.p_leq, "first_is_leq": self.first_is_leq, "digits": digits}


@dataclass(frozen=True)
class Comparison:
    """What one set of networks makes of two drawings. Where a box can't be read (`problems`) or
    no network loaded (`loaded` empty), there are no answers and no judgements."""

    networks: str  # which set: a key of weights.NETWORKS
    source: str  # where the set was loaded from
    loaded: tuple[str, ...]  # the set's variants that loaded, registry order
    missing: dict[str, str]  # {variant: why it did not load}
    seen: dict[str, torch.Tensor]  # {box: (14, 14) raw 0-255}: what the networks see
    problems: dict[str, DrawingError]  # {box: why it can't be read}
    answers: dict[str, Answer]  # {variant: its answer}, registry order
    drawings: dict[str, Drawing]  # {box: the guard's judgement and its two digits}
    not_judged: str | None  # why the drawings are not judged; None where judged
    example: Example | None = None  # the known example the boxes show, unchanged

    def to_json(self) -> dict:
        """`/compare`'s answer: {"networks", "models": {variant: {"p_leq", "first_is_leq",
        "digits"}}, "drawings": {box: {"judgement", "digits"}}, "judged", "not_judged",
        "missing"}. Raises `WeightsError` where no network loaded, then `DrawingError` where a
        box can't be read: a comparison without answers has no JSON."""
        if not self.loaded:
            raise WeightsError(
                f"no model is loaded from {self.source} ({self.networks!r} "
                "networks): " + "; ".join(self.missing.values())
            )
        if self.problems:
            raise DrawingError("; ".join(f"{box} image: {e}" for box, e in self.problems.items()))
        return {
            "networks": self.networks,
            "models": {name: answer.to_json() for name, answer in self.answers.items()},
            "drawings": {box: d.to_json() for box, d in self.drawings.items()},
            "judged": self.not_judged is None,
            "not_judged": self.not_judged,
            "missing": dict(self.missing),
        }


def compare(served: NetworkSet, first, second, known: tuple[Example, ...] = ()) -> Comparison:
    """Two drawings (anything `drawing.load_image` takes) compared by the set `served`; a drawing
    that can't be read is a problem of the result, never an exception. `known`: the examples whose
    truth the page tells when the boxes show one of them, unchanged."""
    fields, problems = read_fields(first, second)
    seen = {box: pool(field.numpy()) for box, field in fields.items()}
    answers, drawings, example = {}, {}, None
    if served.models and not problems:
        x = torch.stack([seen[box] for box in BOXES])[None]
        example = known_example(x[0], known)
        for name, model in served.models.items():
            pred = model.predict(x)
            answers[name] = Answer(
                float(pred.p_leq[0]),
                None if pred.digit_probs is None else pred.digit_probs[0],
                model.head_name,
                count_members(model),
            )
        drawings = judge_drawings(served, fields, answers)
    return Comparison(
        served.networks,
        served.source,
        tuple(served.models),
        dict(served.missing),
        seen,
        problems,
        answers,
        drawings,
        served.not_judged,
        example,
    )


def read_fields(first, second) -> tuple[dict[str, torch.Tensor], dict[str, DrawingError]]:
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


def with_digit_outputs(answers: dict[str, Answer]) -> dict[str, Answer]:
    """The answers of the variants with digit outputs (trained on digit labels): the readings the
    cards show and the guard weighs (digitpair/guard/__init__.py)."""
    return {name: answer for name, answer in answers.items() if VARIANTS[name].digit_loss}


def judge_drawings(
    served: NetworkSet, fields: dict[str, torch.Tensor], answers: dict[str, Answer]
) -> dict[str, Drawing]:
    """{box: its Drawing}: the mean digit distribution of each box over the variants with digit
    outputs (each ensemble averaged first, as the cards show them), judged by the set's guard;
    not judged (judgement None) where the set has none."""
    probs = [answer.digit_probs for answer in with_digit_outputs(answers).values()]
    reading = torch.stack(probs).mean(0) if probs else None  # (2, 10)
    if served.judge is not None:
        drawings = served.judge(torch.stack([fields[box] for box in BOXES]), reading)
    else:
        drawings = guard.unjudged(reading) or [Drawing(None, None)] * len(BOXES)
    return dict(zip(BOXES, drawings))


def top3(probs: torch.Tensor) -> list[list]:
    """(10,) digit probabilities -> [[digit, prob], x3], most likely first."""
    values, digits = probs.topk(3)
    return [[int(d), float(p)] for d, p in zip(digits, values)]


def uploaded_image(value):
    """An API input, returned as is when its images are files Gradio received and checked.

    Gradio vets and caches a file dict marked as its FileData (what `handle_file` sends: an upload
    or a URL it downloads); a bare path, or a dict without that marker, could name any file on
    the server, so it is refused. A Sketchpad dict is vetted image by image.
    """
    images = (
        [value.get("composite"), value.get("background")]
        if isinstance(value, dict) and "composite" in value
        else [value]
    )
    if not all(
        image is None
        or (
            isinstance(image, dict)
            and isinstance(image.get("path"), str)
            and (image.get("meta") or {}).get("_type") == "gradio.FileData"
        )
        for image in images
    ):
        raise DrawingError(
            "send each image as gradio_client's handle_file(path or URL), or as a "
            "Sketchpad dict {'background', 'layers', 'composite'} of such files"
        )
    return value
