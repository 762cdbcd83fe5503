"""Pen-drawn characters stored as pen trajectories, and the page's pen that draws them.

`../shared/data/pen/` (its README) holds digits and other characters written with a pen on
tablets, from the UNIPEN project's train_r01_v07 release (Guyon et al., 1994): each character a
list of strokes, each stroke the pen's positions from pen down to pen up, y pointing down.
Unlike scans, a trajectory can be drawn with the page's own pen, so these reach
`drawing.preprocess` as a visitor's drawing does:

- the paper: 280x280, white (app.py's pads);
- the pen: a round black brush `BRUSH` px wide (the pads' default size 12 is its radius), round
  caps and round joins, anti-aliased as a browser's canvas is (drawn at `SUPERSAMPLE` times the
  size, then averaged down);
- the writer's hand: each character scaled so its trajectory is `HEIGHTS` px tall (its aspect
  kept, shrunk further where it would not fit), anywhere on the paper, from a seeded generator.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw

PEN_ENV = "DIGITPAIR_PEN"
SHARED_PEN = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "pen"
)  # beside the repository
SETS = ("digits", "characters")
PAPER, BRUSH = 280, 24  # app.py: a 280x280 canvas, brush radius 12
HEIGHTS = (110, 230)  # px: the trajectory's height, from a small digit to one filling the box
SUPERSAMPLE = 4


class PenError(RuntimeError):
    """The pen data is missing or damaged; the message says where we looked and what to do."""


@dataclass(frozen=True)
class PenSet:
    """Characters as strokes, in the file's arrays (the pen README's format table)."""

    points: np.ndarray  # (P, 2) float32 x, y; y down; device units
    stroke_start: np.ndarray  # (S,) int64: where each stroke starts in `points`
    sample_start: np.ndarray  # (N,) int64: where each character's strokes start in `stroke_start`
    label: np.ndarray  # (N,) str: the character
    source: np.ndarray  # (N,) str: "lab/file", the lab and the writer's (or session's) file
    quality: np.ndarray  # (N,) str: "OK" (checked) or "?" (not checked)

    def __len__(self) -> int:
        return len(self.label)

    @property
    def lab(self) -> np.ndarray:
        """(N,) str: the lab each character comes from."""
        return np.array([s.split("/", 1)[0] for s in self.source])

    def strokes(self, i: int) -> list[np.ndarray]:
        """Character i as a list of (k, 2) float32 arrays, one per stroke."""
        first = self.sample_start[i]
        last = self.sample_start[i + 1] if i + 1 < len(self) else len(self.stroke_start)
        bounds = np.append(self.stroke_start, len(self.points))[first : last + 1]
        return [self.points[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    def subset(self, keep: np.ndarray) -> "PenSet":
        """The characters where the boolean mask `keep` is true (strokes and points re-indexed)."""
        index = np.flatnonzero(keep)
        strokes = [self.strokes(i) for i in index]
        counts = [len(s) for s in strokes]
        flat = [stroke for character in strokes for stroke in character]
        lengths = [len(stroke) for stroke in flat]
        return PenSet(
            points=np.concatenate(flat) if flat else self.points[:0],
            stroke_start=np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64),
            sample_start=np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64),
            label=self.label[index],
            source=self.source[index],
            quality=self.quality[index],
        )


def pen_folder(folder: str | os.PathLike | None = None) -> Path:
    """`folder`, else $DIGITPAIR_PEN, else ../shared/data/pen beside the repository."""
    return Path(folder or os.environ.get(PEN_ENV) or SHARED_PEN).expanduser()


def load(name: str = "digits", folder: str | os.PathLike | None = None) -> PenSet:
    """`digits` or `characters`, checked against the folder's SHA256SUMS."""
    if name not in SETS:
        raise ValueError(f"unknown pen set {name!r}; choose one of {', '.join(SETS)}")
    root = pen_folder(folder)
    path = root / f"{name}.npz"
    try:
        raw = path.read_bytes()
        sums = dict(
            line.split()[::-1]
            for line in (root / "SHA256SUMS").read_text().splitlines()
            if line.strip()
        )
    except OSError as e:
        raise PenError(
            f"cannot read the pen data at {path.parent} ({e.strerror or e}); "
            f"point ${PEN_ENV} at the folder holding {name}.npz and SHA256SUMS"
        ) from None
    if hashlib.sha256(raw).hexdigest() != sums.get(path.name):
        raise PenError(
            f"{path} does not match its SHA256SUMS entry: the file is damaged; copy it again"
        )
    with np.load(path) as arrays:
        return PenSet(**{field: arrays[field] for field in PenSet.__dataclass_fields__})


def place(
    strokes: list[np.ndarray], height: float, corner: tuple[float, float]
) -> list[np.ndarray]:
    """Strokes scaled (aspect kept) so that their trajectory is `height` px tall, or as wide as fits
    the paper beside the pen, its box's top-left at `corner` (px)."""
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    size = high - low
    room = PAPER - BRUSH
    scale = min(height / max(size[1], 1e-6), room / max(size[0], 1e-6))
    if not np.isfinite(scale) or size.max() == 0:
        scale = 1.0
    return [(s - low) * scale + np.asarray(corner) for s in strokes]


def random_place(
    strokes: list[np.ndarray],
    rng: np.random.Generator,
    heights: tuple[float, float] = HEIGHTS,
    brush: float = BRUSH,
) -> list[np.ndarray]:
    """`place` at a height uniform in `heights`, anywhere the ink stays on the paper: the whole
    character moved as one, its strokes where the writer put them."""
    placed = place(strokes, rng.uniform(*heights), (0.0, 0.0))
    extent = np.concatenate(placed).max(0)
    free = np.maximum(PAPER - brush - extent, 0.0)
    shift = brush / 2 + rng.uniform(0, 1, 2) * free
    return [s + shift for s in placed]


def draw(strokes: list[np.ndarray], brush: float = BRUSH, paper: int = PAPER) -> np.ndarray:
    """(paper, paper) uint8 grey: the strokes (px, on the paper) in black with a round brush
    `brush` px wide, round caps and joins, on white. Drawn at SUPERSAMPLE times the size and
    averaged down, so edges are anti-aliased as a canvas's are."""
    k = SUPERSAMPLE
    image = PIL.Image.new("L", (paper * k, paper * k), 255)
    pen = PIL.ImageDraw.Draw(image)
    radius = brush * k / 2
    for stroke in strokes:
        xy = [(float(x) * k, float(y) * k) for x, y in stroke]
        if len(xy) > 1:
            pen.line(xy, fill=0, width=max(1, round(brush * k)), joint="curve")
        for x, y in (xy[0], xy[-1]):  # round caps (and a dab where the pen only touched)
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return np.asarray(image.reduce(k))


class Drawings(Sequence):
    """A pen set drawn on the page's paper, one image (280x280 uint8, black on white) per item,
    drawn when asked: the same seed gives the same places and sizes."""

    def __init__(self, pen: PenSet, brush: float = BRUSH, seed: int = 0, heights=HEIGHTS):
        self.pen, self.brush, self.heights = pen, brush, heights
        rng = np.random.default_rng(seed)
        # One generator state per character, so drawing any one of them needs no others.
        self.seeds = rng.integers(0, 2**63, len(pen))

    def __len__(self) -> int:
        return len(self.pen)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        rng = np.random.default_rng(self.seeds[i])
        return draw(random_place(self.pen.strokes(i), rng, self.heights, self.brush), self.brush)
