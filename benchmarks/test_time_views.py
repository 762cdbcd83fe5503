"""Levers that need no training: the served networks read other writers' digits through a
test-time transform of their 14x14 input (validation data used for choices, never trained on).

- views: the mean reading of the digit and `k` per-digit random affine views of it
  (`digitpair.core.augment`'s `safe` or `slant` ranges, the second as wide as `style` trained with),
  as an ensemble averages its members;
- deskew: each digit sheared so that its principal axis is upright, the moment deskewing of
  LeCun et al. (1998, "Gradient-based learning applied to document recognition", table of
  results: deslanted inputs) that USPS itself went through.
Then the UCI 9s, the one class below 75 %: does a 9 whose loop survives the 8x8 grid (an enclosed
hole in the 8x8 scan, 4-connected background) read better than one whose loop is filled in?

    python benchmarks/test_time_views.py [--weights weights] [--rounds 2]

writes benchmarks/test_time_views.json (what docs/other-writers.md quotes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from digitpair.core import augment, writers
from digitpair.core.models import Prediction
from digitpair.guard.pretrained import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("simple_cnn", "shared_aux", "unshared_aux")  # the served variants that read digits
HOLE_LEVELS = (4, 8)  # of UCI's 16: ink at or above it is a stroke


def views(x: torch.Tensor, k: int, style: augment.DigitStyle) -> list[torch.Tensor]:
    """(N, 2, 14, 14) -> x and k views, each digit under its own affine of `style`'s ranges."""
    g = torch.Generator().manual_seed(0)
    digits = x.reshape(-1, 1, 14, 14)
    grids = [
        augment.random_affine_grid(
            digits, g, style.degrees, style.scale, style.shift_px, style.shear, style.aspect
        )
        for _ in range(k)
    ]
    return [x] + [augment.resample(digits, grid).reshape(x.shape) for grid in grids]


def deskew(x: torch.Tensor) -> torch.Tensor:
    """(N, 2, 14, 14) -> each digit sheared along x by its moments' slope mu11 / mu02 about its
    centre."""
    d = x.reshape(-1, 14, 14).float()
    ys, xs = torch.meshgrid(torch.arange(14.0), torch.arange(14.0), indexing="ij")
    mass = d.sum((1, 2)).clamp_min(1e-6)
    cx, cy = (d * xs).sum((1, 2)) / mass, (d * ys).sum((1, 2)) / mass
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]
    slope = (d * dx * dy).sum((1, 2)) / (d * dy**2).sum((1, 2)).clamp_min(1e-6)
    # The output pixel (x, y) reads the input at (x + slope (y - cy), y); grid units: u = (2 x + 1)
    # / 14 - 1.
    n, one, zero = len(d), torch.ones(len(d)), torch.zeros(len(d))
    theta = torch.stack(
        (
            torch.stack((one, slope, -slope * ((2 * cy + 1) / 14 - 1)), 1),
            torch.stack((zero, one, zero), 1),
        ),
        1,
    )
    grid = F.affine_grid(theta, [n, 1, 14, 14], align_corners=False)
    return augment.resample(d[:, None], grid).reshape(x.shape)


class Transformed:
    """A model that reads the mean of its readings of `transform(x)`'s inputs."""

    def __init__(self, model, transform):
        self.model, self.transform = model, transform

    def predict(self, x: torch.Tensor) -> Prediction:
        outs = [self.model.predict(v) for v in self.transform(x)]
        return Prediction(
            torch.stack([o.p_leq for o in outs]).mean(0),
            torch.stack([o.digit_probs for o in outs]).mean(0),
        )


LEVERS = {
    "as drawn": lambda x: [x],
    "4 safe views": lambda x: views(x, 4, augment.PER_DIGIT["safe"]),
    "8 safe views": lambda x: views(x, 8, augment.PER_DIGIT["safe"]),
    "4 slant views": lambda x: views(x, 4, augment.PER_DIGIT["slant"]),
    "deskewed": lambda x: [deskew(x)],
}


def has_hole(scan: np.ndarray, level: int) -> bool:
    """An 8x8 UCI scan (0-16) holds paper enclosed by ink: a 4-connected background piece off the
    border."""
    from scipy import ndimage

    paper = np.pad(scan < level, 1, constant_values=True)
    return ndimage.label(paper)[1] > 1


def nines(model, uci: writers.Writers) -> dict:
    """Of UCI's 9s, the share with a hole at each level, and how often each kind is read right."""
    from sklearn.datasets import load_digits

    scans, labels = load_digits().images, uci.labels.numpy()
    index = np.flatnonzero(labels == 9)
    x = uci.inputs[index]
    right = model.predict(torch.stack((x, x), 1)).digit_probs[:, 0].argmax(-1).numpy() == 9
    out = {}
    for level in HOLE_LEVELS:
        hole = np.array([has_hole(scans[i], level) for i in index])
        out[f"ink >= {level}/16"] = {
            "nines": int(len(index)),
            "with_hole": round(100 * hole.mean(), 1),
            "read_right_with_hole": round(100 * right[hole].mean(), 1),
            "read_right_without": round(100 * right[~hole].mean(), 1),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default=str(ROOT / "weights"))
    p.add_argument(
        "--rounds", type=int, default=2, help="permutations of each set drawn into pairs"
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "test_time_views.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    sets = [writers.load(name) for name in writers.LOADERS]
    models = load_pretrained(args.weights, networks="ours")
    result = {
        "use": "validation (used for choices): no network trained on these digits",
        "command": "python benchmarks/test_time_views.py",
        "weights": "ours",
        "levers": {},
    }
    for name in VARIANTS:
        for lever, transform in LEVERS.items():
            row = {
                w.name: {
                    k: round(v, 2)
                    for k, v in (
                        ("digit_acc", r.digit_acc),
                        ("pair_acc", r.pair_acc),
                        ("nines", r.per_digit[9]),
                    )
                }
                for w in sets
                for r in [writers.score(Transformed(models[name], transform), w, args.rounds)]
            }
            result["levers"].setdefault(name, {})[lever] = row
            print(name, lever, json.dumps(row), flush=True)
    uci = next(w for w in sets if w.name == "uci")
    result["uci_nines"] = {name: nines(models[name], uci) for name in VARIANTS}
    print(json.dumps(result["uci_nines"]))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
