"""What the guard learns from and is measured on: every set drawn as the page draws, by writer.

Each part is a set of drawings as `drawing.mnist_field` boxes and centres them (28x28, raw 0-255;
`pool` gives the 14x14 the networks see, as `drawing.preprocess` does), made once and kept in a
cache folder (`CACHE_ENV`, default `.cache/guard/` in the checkout; it only saves time: a part is
the same bytes rebuilt or read back, since every drawing comes from its own seeded generator):

- `pen_digits`: the UNIPEN pen digits (`../shared/data/pen/`) drawn with the pad's 24 px brush, as a
  visitor's digits reach the page; `pen_digits_brushes` the same with brushes of 16-32 px;
- `pen_characters`: the UNIPEN letters and symbols, brushes of 16-32 px, without the characters
  that are drawn like digits (`DIGIT_LIKE`);
- `mnist_train`, `mnist_test`: MNIST's scans enlarged onto the 280x280 paper, black on white, as
  a drawing reaches the page; `mnist_train_pen`, `mnist_test_pen`: the same redrawn as the pad's
  brush paints (crisp ink, strokes 0-12 px wider: `pen_drawn`);
- `usps`, `uci`: digitpair/core/writers.py's, as the app sees them;
- `doodles_<kind>`: the generated non-digits of digitpair/guard/doodles.py.

Writers are split by their `source` file (one writer or session), by a hash of its name
(`writer_role`): fit (60 %), choose (20 %), report (20 %); the non-digit-like characters by a hash
of the character (`character_role`): 80 % fit, 20 % that a fit may hold out (fit.HOLD_OUT:
measured, never shown to the guard). USPS and UCI name no writers: their digits split by a hash of
their index (`half_role`), half that a fit may learn from (fit.HALVES), half measured. Generated
kinds by doodles.GROUPS.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from ..core import pen, writers
from ..core.drawing import FIELD, DrawingError, mnist_field
from . import doodles

CACHE_ENV = "DIGITPAIR_GUARD_CACHE"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "guard"
# Characters a person reads as a digit when drawn alone (0: O o D Q; 1: I l | i j ! / \ ( ) [ ] { }
# and the strokes ' ` , that preprocess enlarges into a bar; 2: Z z; 5: S s $; 6: b G; 8: B &;
# 9: g q): neither taught to the guard as "not a digit" nor counted in its rates.
DIGIT_LIKE = frozenset("OoDQIl|ij!/\\()[]{}'`,ZzSs$bGB&gq")
ROLES = ("fit", "choose", "report")
MNIST_CHOOSE = 5000  # MNIST training digits kept out of fitting, to choose the limits on
# The code that draws each part (by its name's start): a change to it changes the part's cache key.
# LAYOUT is what this module makes of it, raised when it changes what a part holds.
DRAWING_CODE = {
    "pen_": ("core/pen.py", "core/drawing.py"),
    "mnist_": ("core/drawing.py",),
    "doodles_": ("guard/doodles.py", "core/pen.py", "core/drawing.py"),
    "": ("core/writers.py", "core/pen.py", "core/drawing.py"),
}
LAYOUT = 2
BRUSHES = (16, 32)  # px: the brush widths drawings are made with (the pad's is pen.BRUSH, 24)


@dataclass(frozen=True)
class Part:
    """Drawings boxed and centred: `x` (N, 28, 28) float32 raw 0-255 (zeros where `accepted` is
    False: preprocess refused it, as a dot); `label` (N,) str: the digit, the character or the
    kind; `source` (N,) str: who drew it ("" where unknown)."""

    x: np.ndarray
    accepted: np.ndarray
    label: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def pool(fields: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 14, 14) by 2x2 averages: what the networks see, as `drawing.pool`."""
    half = FIELD // 2
    return torch.from_numpy(fields).reshape(len(fields), half, 2, half, 2).mean((2, 4)).numpy()


def stable_hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def writer_role(source: str) -> str:
    """fit, choose or report for a pen writer's file, by a hash of its name: 60 / 20 / 20 %."""
    bucket = stable_hash(f"writer:{source}") % 10
    return "fit" if bucket < 6 else "choose" if bucket < 8 else "report"


def character_role(character: str) -> str:
    """fit (80 %) or held out (20 %) for a non-digit-like character, by a hash of it."""
    return "fit" if stable_hash(f"character:{character}") % 5 else "held out"


def half_role(name: str, index: int) -> str:
    """fit (50 %) or report (50 %) for digit `index` of `name` (guard.HALVED), by a hash of it.
    Neither set records its writers, so a writer may have digits on both sides: a rate on the
    report half predicts other digits of these writers, not other writers (`fit.HALVES`)."""
    return "fit" if stable_hash(f"{name}:{index}") % 2 else "report"


def through_app(images) -> tuple[np.ndarray, np.ndarray]:
    """Drawings -> ((N, 28, 28) float32 boxed and centred as preprocess does, zeros where it
    refuses one; (N,) accepted)."""
    x, accepted = np.zeros((len(images), FIELD, FIELD), np.float32), np.zeros(len(images), bool)
    for i, image in enumerate(images):
        try:
            x[i] = mnist_field(np.asarray(image))
            accepted[i] = True
        except DrawingError:
            pass
    return x, accepted


class Drawn:
    """Drawings made on demand, item i by `make(i)`: a sequence `through_app` can walk."""

    def __init__(self, n: int, make):
        self.n, self.make = n, make

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.make(i)


def pen_drawings(penset: pen.PenSet, seed: int, brush: float | None = None) -> Drawn:
    """Each character drawn at a random place and height with `brush` px, or a brush of
    BRUSHES drawn for each, from a generator of its own (seed, i)."""

    def make(i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, i])
        width = random_brush(rng) if brush is None else brush
        return pen.draw(pen.random_place(penset.strokes(i), rng, pen.HEIGHTS, width), width)

    return Drawn(len(penset), make)


def random_brush(rng: np.random.Generator) -> float:
    return float(rng.integers(BRUSHES[0], BRUSHES[1] + 1))


def as_drawing(digit: np.ndarray) -> PIL.Image.Image:
    """A 28x28 MNIST digit (white on black) as a person's drawing: black on white, the paper's
    size."""
    size = (pen.PAPER, pen.PAPER)
    return PIL.Image.fromarray(255 - digit).resize(size, PIL.Image.Resampling.BILINEAR)


def pen_drawn(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit redrawn as the pad's brush paints: (280, 280) uint8, crisp ink (no
    scanner's grey edge), strokes 0-12 px wider. MNIST's strokes are about 20 px wide on the paper
    (1.95 px of 28, drawing.py), the pad's brush BRUSHES. A pixel is ink where any pixel
    of the size x size square around it is darker than mid-grey: PIL's MinFilter(size) then a
    threshold, the same pixels, counted with running sums along rows and columns (many times
    faster)."""
    dark = (np.asarray(as_drawing(digit)) < 128).astype(np.int32)
    size = 2 * int(rng.integers(0, 7)) + 1
    for axis in (0, 1):
        padded = np.pad(dark, [(size // 2 + 1, size // 2) if a == axis else (0, 0) for a in (0, 1)])
        running = padded.cumsum(axis)
        length = running.shape[axis]
        dark = np.take(running, range(size, length), axis) - np.take(
            running, range(length - size), axis
        )
    return np.where(dark > 0, 0, 255).astype(np.uint8)


def mnist_drawings(images: np.ndarray, seed: int | None) -> Drawn:
    """MNIST digits enlarged onto the paper (`seed` None), or redrawn with the pen (`pen_drawn`)."""
    if seed is None:
        return Drawn(len(images), lambda i: np.asarray(as_drawing(images[i])))
    return Drawn(len(images), lambda i: pen_drawn(images[i], np.random.default_rng([seed, i])))


def doodle_drawings(kind: str, n: int, digits: pen.PenSet | None, seed: int) -> Drawn:
    """n drawings of a doodles kind; one OF_DIGITS is made of `digits` (`made_of`)."""
    index = list(doodles.KINDS) + list(doodles.OF_DIGITS)

    def make(i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, index.index(kind), i])
        digit = None if digits is None else digits.strokes(int(rng.integers(len(digits))))
        return doodles.draw(kind, rng, random_brush(rng), digit)

    return Drawn(n, make)


# Generated drawings per kind: the fitting kinds' are what the guard learns "not a digit" from.
PER_KIND = {"fit": 4000, "choose": 600, "report": 600, "near": 4000}
PARTS = (
    "pen_digits",
    "pen_digits_brushes",
    "pen_characters",
    "mnist_train",
    "mnist_train_pen",
    "mnist_test",
    "mnist_test_pen",
    "usps",
    "uci",
    *(f"doodles_{k}" for group in doodles.GROUPS.values() for k in group),
)


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_ENV) or CACHE)


def code_version(name: str) -> str:
    """The cache key of part `name`: the code that draws it, and LAYOUT."""
    here = Path(__file__).resolve().parents[1]  # digitpair/
    files = next(files for start, files in DRAWING_CODE.items() if name.startswith(start))
    code = b"".join((here / file).read_bytes() for file in files)
    return hashlib.sha256(code + f"layout {LAYOUT}".encode()).hexdigest()[:12]


def build(name: str, mnist) -> Part:
    """Draw part `name` (PARTS) from scratch; `mnist`: a data.MNIST."""
    kind = name.removeprefix("doodles_")
    if name.startswith("pen_digits") or kind in doodles.OF_DIGITS:
        digits = pen.load("digits")
    if name in ("pen_digits", "pen_digits_brushes"):
        brush, seed = (pen.BRUSH, 0) if name == "pen_digits" else (None, 1)
        return Part(*through_app(pen_drawings(digits, seed, brush)), digits.label, digits.source)
    if name == "pen_characters":
        characters = pen.load("characters")
        characters = characters.subset(np.array([c not in DIGIT_LIKE for c in characters.label]))
        return Part(*through_app(pen_drawings(characters, 2)), characters.label, characters.source)
    if name.startswith("mnist_"):
        split = "train" if "train" in name else "test"
        images = getattr(mnist, f"{split}_images").numpy()
        labels = getattr(mnist, f"{split}_labels").numpy().astype(str)
        seed = (3 if split == "train" else 4) if name.endswith("_pen") else None
        return Part(*through_app(mnist_drawings(images, seed)), labels, np.full(len(labels), ""))
    if name in ("usps", "uci"):
        w = writers.load(name)
        return Part(*through_app(w.images), w.labels.numpy().astype(str), np.full(len(w), ""))
    struck = made_of(kind, digits) if kind in doodles.OF_DIGITS else None
    n = PER_KIND[group_of(kind)]
    return Part(*through_app(doodle_drawings(kind, n, struck, 5)), np.full(n, kind), np.full(n, ""))


def group_of(kind: str) -> str:
    return next(g for g, kinds in doodles.GROUPS.items() if kind in kinds)


def made_of(kind: str, digits: pen.PenSet) -> pen.PenSet:
    """The pen digits a crossed-out kind or a near miss is made of. A crossed-out digit is one of
    its group's writers' digits: the report's strike out digits by writers the guard never saw. A
    near miss, which is only fitted on, is one of the fitting writers' doodles.NEAR_DIGITS."""
    group = group_of(kind)
    writer = "fit" if group == "near" else group
    keep = np.array([writer_role(s) == writer for s in digits.source])
    if kind in doodles.NEAR_MISSES:
        keep &= np.isin(digits.label, list(doodles.NEAR_DIGITS[kind]))
    return digits.subset(keep)


def load(name: str, mnist=None) -> Part:
    """Part `name`, from the cache when it holds it (else drawn and kept there)."""
    path = cache_folder() / f"{name}-{code_version(name)}.npz"
    if path.is_file():
        with np.load(path) as f:
            return Part(f["x"], f["accepted"], f["label"], f["source"])
    if mnist is None and name.startswith("mnist_"):
        from ..core.data import MNIST

        mnist = MNIST()
    part = build(name, mnist)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, x=part.x, accepted=part.accepted, label=part.label, source=part.source)
    os.replace(tmp, path)
    return part
