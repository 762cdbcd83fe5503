"""Which pen band should `drawing.preprocess` bring drawings into? Read on a screen's networks.

The screen (`train/studies/writers.toml`, validation only) trained every augmentation's
networks; their weights stay in its run folders on the machine that trained them. This reads
each run's network through `preprocess` with each candidate pen band (`drawing.even_pen`), on
three sets of digits no run trained on, every one validation:
- MNIST validation digits: the run's own 200 validation pairs, each digit rendered as a drawing
  would reach the page (enlarged 4x to 112x112 with bilinear interpolation, 20 px of paper);
- the USPS train split and the UCI digits (`digitpair/core/writers.py`).
Digit accuracy (%), mean over the runs of each augmentation, for the variants with digit outputs.

    python benchmarks/pen_screen.py [--runs train/runs/writers] [--out benchmarks/pen_screen.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from digitpair.core import writers
from digitpair.core.data import MNIST
from digitpair.core.drawing import PEN_BAND, preprocess
from digitpair.core.models import VARIANTS
from digitpair.lab import records

ROOT = Path(__file__).resolve().parents[1]
# MNIST's stroke widths in the 28x28 field (drawing.stroke_width): percentiles 5, 10, 25, 50, 75,
# 90, 95
# are 1.30, 1.45, 1.65, 1.95, 2.29, 2.62, 3.00 px (5000 training digits).
BANDS = {
    "as drawn": None,
    "p5-p95": (1.30, 3.00),
    "p10-p90": (1.45, 2.62),
    "p25-p75": PEN_BAND,
    "median": (1.95, 1.95),
}


def as_drawing(digit: torch.Tensor) -> np.ndarray:
    """(28, 28) uint8 MNIST digit -> (152, 152) uint8 image, as a drawing reaches preprocess."""
    big = PIL.Image.fromarray(digit.numpy()).resize((112, 112), PIL.Image.Resampling.BILINEAR)
    return np.pad(np.asarray(big), 20)


def digit_acc(model, x: torch.Tensor, labels: torch.Tensor) -> float:
    pairs = torch.stack((x, x.roll(-1, 0)), 1)
    probs = model.predict(pairs).digit_probs
    return 100.0 * (probs[:, 0].argmax(-1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=str(ROOT / "train" / "runs" / "writers"))
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $DIGITPAIR_DATA)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "pen_screen.json"))
    args = parser.parse_args()

    mnist = MNIST(args.data_dir, download=False)
    sets = {w.name: w for w in (writers.load(n) for n in writers.LOADERS)}
    inputs = {
        (name, band): torch.stack([preprocess(image, pen) for image in w.images])
        for name, w in sets.items()
        for band, pen in BANDS.items()
    }
    runs = [r for r in records.load(args.runs) if VARIANTS[r.variant].digit_loss]
    cells: dict[tuple[str, str, str, str], list[float]] = {}
    for rounds in sorted({r.round for r in runs}):
        cfg = runs[0].config
        held = mnist.round_digits(rounds, cfg.n_pairs, cfg.val_pairs, cfg.val_fold)[
            1
        ]  # the round's validation digits
        images, labels = [as_drawing(d) for d in mnist.train_images[held]], mnist.train_labels[held]
        mnist_inputs = {
            band: torch.stack([preprocess(image, pen) for image in images])
            for band, pen in BANDS.items()
        }
        for r in (r for r in runs if r.round == rounds):
            model = records.load_model(args.runs, r)
            for band in BANDS:
                key = (r.setting, r.variant, band)
                cells.setdefault((*key, "mnist"), []).append(
                    digit_acc(model, mnist_inputs[band], labels)
                )
                for name, w in sets.items():
                    cells.setdefault((*key, name), []).append(
                        digit_acc(model, inputs[(name, band)], w.labels)
                    )

    table = [
        {
            "setting": s,
            "variant": v,
            "band": b,
            "set": n,
            "runs": len(a),
            "digit_acc": statistics.fmean(a),
        }
        for (s, v, b, n), a in cells.items()
    ]
    Path(args.out).write_text(
        json.dumps(
            {
                "use": "validation (used for choices)",
                "runs": args.runs,
                "bands": BANDS,
                "cells": table,
            },
            indent=2,
        )
        + "\n"
    )
    by = {(c["setting"], c["variant"], c["band"], c["set"]): c["digit_acc"] for c in table}
    settings = list(dict.fromkeys(c["setting"] for c in table))
    variants = list(dict.fromkeys(c["variant"] for c in table))
    print("digit accuracy (%), validation: MNIST (drawn) / USPS / UCI, mean over rounds")
    print("| setting | variant | " + " | ".join(BANDS) + " |")
    print("|" + " --- |" * (len(BANDS) + 2))
    for s in settings:
        for v in variants:
            print(
                f"| {s} | {v} | "
                + " | ".join(
                    " / ".join(f"{by[(s, v, b, n)]:.1f}" for n in ("mnist", *sets)) for b in BANDS
                )
                + " |"
            )


if __name__ == "__main__":
    main()
