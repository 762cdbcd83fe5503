"""Digits by writers MNIST never saw, as the app sees them: validation data, used for choices only.

No network trains on these (the study's protocol trains on one round's 1000 MNIST pairs and
nothing else); they measure how well the whole served path, `drawing.preprocess` + networks,
reads other people's handwriting, and every figure measured on them is named "validation".

- `usps`: the USPS training split (Le Cun et al., 1990), 7291 digits scanned from envelopes,
  deslanted and size-normalised to 16x16 grey levels in [-1, 1] (`../shared/data/usps/`,
  checked against its SHA256SUMS entry).
- `uci`: the UCI optical-recognition digits that scikit-learn bundles (`load_digits`, Alpaydin &
  Kaynak 1998): 1797 digits by 13 writers, 32x32 binary scans reduced to 8x8 ink counts 0-16.
- `pen`: the pen-drawn digits of `../shared/data/pen/` (`digitpair/core/pen.py`: UNIPEN, 8,685
digits
  by the writers of 12 labs, in conventions MNIST's writers rarely used), drawn as pen
  trajectories with the page's own pen onto its 280x280 paper (a 24 px brush; `load_pen` takes
  another width), each digit's lab kept to read them lab by lab.

The scans reach `preprocess` as a drawing would: ink scaled to 0-255, the grid enlarged to 64x64
with bilinear interpolation (smooth strokes, as a scan or a canvas has, not blocks), a 16 px paper
margin (the paper colour preprocess reads off the border), i.e. a 96x96 white-on-black image. A
drawing `preprocess` refuses (a pen segment that is only a dot) counts as misread.

Digit accuracy: every digit once in each position (digit i paired with digit i+1, cyclically),
both positions counted. Pair accuracy: `rounds` random permutations of the set, consecutive
digits paired, target first <= second, the model's P(first <= second) > 0.5.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from . import pen
from .drawing import FIELD, DrawingError, preprocess

USPS_ENV = "DIGITPAIR_USPS"
USPS_FILE = "zip.train.gz"
USPS_SHA256 = "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16"
SHARED_USPS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "usps"
)  # beside the repository
CANVAS, MARGIN = 64, 16


class WritersError(RuntimeError):
    """A validation set is missing or damaged; the message says where we looked and what to do."""


@dataclass(frozen=True)
class Writers:
    name: str  # "usps" | "uci"
    title: str  # what it is, for tables
    images: Sequence  # N images (H, W) uint8 as a drawing reaches preprocess: (96, 96) white
    #   on black for scans, pen.Drawings (280, 280) black on white for the pen
    labels: torch.Tensor  # (N,) int64
    groups: np.ndarray | None = None  # (N,) str: who wrote each digit (the pen's labs), if known

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def inputs(self) -> torch.Tensor:
        """(N, 14, 14) float32 raw 0-255: the images through the app's `preprocess`; zeros where
        it refuses one (`refused`)."""
        return torch.stack([self._preprocessed[i][0] for i in range(len(self))])

    @functools.cached_property
    def refused(self) -> torch.Tensor:
        """(N,) bool: the drawings `preprocess` refuses (a dot: a pen segment, not a digit), as the
        page refuses them; they count as misread."""
        return torch.tensor([self._preprocessed[i][1] for i in range(len(self))])

    @functools.cached_property
    def _preprocessed(self) -> list[tuple[torch.Tensor, bool]]:
        out = []
        for image in self.images:
            try:
                out.append((preprocess(image), False))
            except DrawingError:
                out.append((torch.zeros(FIELD // 2, FIELD // 2), True))
        return out


def render(ink: np.ndarray) -> np.ndarray:
    """(h, w) ink 0-255 -> (96, 96) uint8: enlarged to 64x64 (bilinear), 16 px of paper around
    it."""
    big = PIL.Image.fromarray(ink.astype(np.float32)).resize(
        (CANVAS, CANVAS), PIL.Image.Resampling.BILINEAR
    )
    return np.pad(np.clip(np.asarray(big), 0, 255).round().astype(np.uint8), MARGIN)


def usps_folder(folder: str | os.PathLike | None = None) -> Path:
    """`folder`, else $DIGITPAIR_USPS, else ../shared/data/usps beside the repository."""
    return Path(folder or os.environ.get(USPS_ENV) or SHARED_USPS).expanduser()


def load_usps(folder: str | os.PathLike | None = None) -> Writers:
    path = usps_folder(folder) / USPS_FILE
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise WritersError(
            f"cannot read the USPS digits at {path} ({e.strerror or e}); "
            f"point ${USPS_ENV} at the folder holding {USPS_FILE}"
        ) from None
    if hashlib.sha256(raw).hexdigest() != USPS_SHA256:
        raise WritersError(
            f"{path} does not match its SHA-256 ({USPS_SHA256[:12]}...): the file is damaged; "
            "copy it again"
        )
    rows = np.loadtxt(gzip.decompress(raw).decode().splitlines(), dtype=np.float32)  # (7291, 257)
    labels = torch.as_tensor(rows[:, 0].astype(np.int64))
    ink = (rows[:, 1:].reshape(-1, 16, 16) + 1) * (255 / 2)  # -1 paper .. 1 ink
    return Writers(
        "usps",
        f"USPS train split, {len(labels)} digits",
        np.stack([render(d) for d in ink]),
        labels,
    )


def load_uci() -> Writers:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise WritersError(
            "the UCI digits come with scikit-learn: pip install scikit-learn"
        ) from None
    digits = load_digits()
    images = np.stack([render(counts * (255 / 16)) for counts in digits.images])
    return Writers(
        "uci",
        f"UCI digits (scikit-learn), {len(digits.target)} digits, 13 writers",
        images,
        torch.as_tensor(digits.target, dtype=torch.int64),
    )


def load_pen(brush: float = pen.BRUSH) -> Writers:
    """The pen digits drawn with the page's pen (`pen.Drawings`), `brush` px wide; named "pen" at
    the page's width, "pen12" at 12 px."""
    try:
        digits = pen.load("digits")
    except pen.PenError as e:
        raise WritersError(str(e)) from None
    name = "pen" if brush == pen.BRUSH else f"pen{brush:g}"
    title = (
        f"pen-drawn digits (UNIPEN), {len(digits)} digits by {len(set(digits.lab))} labs, "
        f"drawn with a {brush:g} px pen"
    )
    return Writers(
        name,
        title,
        pen.Drawings(digits, brush),
        torch.as_tensor(digits.label.astype(np.int64)),
        digits.lab,
    )


LOADERS = {"usps": load_usps, "uci": load_uci, "pen": load_pen}


def load(name: str) -> Writers:
    if name not in LOADERS:
        raise ValueError(f"unknown set {name!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[name]()


def pairs(n: int, rounds: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cyclic, random): (n, 2) each digit once per position; (rounds * n//2, 2) random pairs."""
    g = torch.Generator().manual_seed(seed)
    random = torch.cat(
        [torch.randperm(n, generator=g)[: n // 2 * 2].view(-1, 2) for _ in range(rounds)]
    )
    return torch.stack((torch.arange(n), torch.arange(n).roll(-1)), 1), random


@dataclass(frozen=True)
class Reading:
    """How one model reads one set: accuracies in %, digit ones None for a model without digits."""

    digit_acc: float | None
    pair_acc: float
    per_digit: tuple[float, ...] | None  # digit accuracy of each class 0-9
    confusions: tuple[tuple[int, int, int], ...] | None  # (true, read, count), most frequent first
    per_group: dict[str, float] | None = (
        None  # digit accuracy of each writer group (the pen's labs)
    )


def score(model, writers: Writers, rounds: int = 10, seed: int = 0, top: int = 5) -> Reading:
    """`model` (anything with `predict`) on `writers`, by the protocol in this module's
    docstring."""
    x, labels, refused = writers.inputs, writers.labels, writers.refused
    cyclic, random = pairs(len(labels), rounds, seed)
    p_leq = model.predict(x[random]).p_leq
    right = (p_leq > 0.5) == (labels[random[:, 0]] <= labels[random[:, 1]])
    pair_acc = 100.0 * (right & ~refused[random].any(1)).float().mean().item()
    probs = model.predict(x[cyclic]).digit_probs
    if probs is None:
        return Reading(None, pair_acc, None, None)
    truth, guess = labels[cyclic].flatten(), probs.argmax(-1).flatten()
    seen = ~refused[cyclic].flatten()
    correct = (truth == guess) & seen
    counts = torch.bincount(truth[seen] * 10 + guess[seen], minlength=100).view(
        10, 10
    )  # [true, read]
    per_digit = tuple((100.0 * counts.diag() / torch.bincount(truth, minlength=10)).tolist())
    wrong = counts.clone().fill_diagonal_(0)
    order = wrong.flatten().argsort(descending=True, stable=True)[:top]
    confusions = tuple(
        (int(i) // 10, int(i) % 10, int(wrong.flatten()[i]))
        for i in order
        if wrong.flatten()[i] > 0
    )
    groups = (
        None if writers.groups is None else writers.groups[cyclic.numpy()].flatten()
    )  # as truth
    per_group = (
        None
        if writers.groups is None
        else {
            group: 100.0 * correct[torch.from_numpy(groups == group)].float().mean().item()
            for group in sorted(set(groups))
        }
    )
    return Reading(
        100.0 * correct.float().mean().item(), pair_acc, per_digit, confusions, per_group
    )


@functools.lru_cache(maxsize=1)  # once per process: a study's worker reads them after every run
def validation_sets() -> tuple[Writers, ...]:
    """Both sets, each with its inputs preprocessed; a set that cannot be loaded is left out, with a
    warning."""
    found = []
    for name in LOADERS:
        try:
            found.append(load(name))
        except WritersError as e:
            warnings.warn(f"other writers' digits not read: {e}", stacklevel=2)
    for writers in found:
        writers.inputs  # preprocessed here, once
    return tuple(found)


def read_other_writers(model) -> dict[str, float | None]:
    """{usps_digit_acc, usps_pair_acc, uci_digit_acc, uci_pair_acc} of `model`, as run records hold
    them (training.Metrics); a set that cannot be loaded gives None, as for a model without
    digits."""
    readings = {w.name: score(model, w) for w in validation_sets()}
    found = {
        f"{name}_{what}": (getattr(readings[name], what) if name in readings else None)
        for name in LOADERS
        for what in ("digit_acc", "pair_acc")
    }
    per_digit = readings["pen"].per_digit if "pen" in readings else None
    return {**found, "pen_per_digit": None if per_digit is None else list(per_digit)}
