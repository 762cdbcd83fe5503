"""The pen screen's pictures: training digits with their writing conventions drawn, and the pen
digits a setting's networks still misread (validation).

- `conventions.png`: each convention (digitpair/core/conventions.py) on MNIST training digits of its
  class from round 0's pairs: each column a digit before (top) and after (below), at 14x14 as the
  networks see them, enlarged.
- `misread.png`: pen digits (digitpair/core/writers.py, drawn with the page's pen) that the screen's
  networks of `--setting` misread, round 0's `shared_aux` run: one row per digit class, as the
  network sees them after `drawing.preprocess`; `misread.md` lists what each was read as.

It also prints, per digit, the share of round 0's MNIST training digits and of the pen digits
whose ink (above 40 % of the peak, at 14x14) is in two or more 8-connected pieces of 2 px or more,
and the share that encloses a hole: what a 5 with its bar apart, a 4 in two strokes or a closed
4 would show.

    python benchmarks/pen_pictures.py [--runs train/runs/pen] [--setting conventions] [--out
    docs/pen]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from scipy import ndimage

from digitpair.core import writers
from digitpair.core.conventions import CLASS, Conventions, draw_conventions
from digitpair.core.data import MNIST, PairSet
from digitpair.lab import records

ROOT = Path(__file__).resolve().parents[1]
COLUMNS, SCALE = 12, 4


def grid(rows: list[list[np.ndarray]]) -> PIL.Image.Image:
    """Rows of (14, 14) 0-255 digits, one px of grey between them, enlarged SCALE times."""
    lines = []
    for row in rows:
        row = row + [np.zeros((14, 14))] * (COLUMNS - len(row))
        lines.append(
            np.concatenate([np.pad(d, ((0, 1), (0, 1)), constant_values=64) for d in row], 1)
        )
    image = np.concatenate(lines, 0).clip(0, 255).astype(np.uint8)
    return PIL.Image.fromarray(image).resize(
        (image.shape[1] * SCALE, image.shape[0] * SCALE), PIL.Image.Resampling.NEAREST
    )


def conventions_picture(mnist: MNIST) -> PIL.Image.Image:
    train = mnist.round(0, 1000, 0, 0).train
    digits, classes = train.input.reshape(-1, 1, 14, 14), train.classes.reshape(-1)
    rows = []
    g = torch.Generator().manual_seed(0)
    for name in CLASS:
        picked = (classes == CLASS[name]).nonzero().flatten()[:COLUMNS]
        drawn = draw_conventions(digits[picked], classes[picked], g, Conventions(**{name: 1.0}))
        rows += [[d[0].numpy() for d in digits[picked]], [d[0].numpy() for d in drawn]]
    return grid(rows)


def pieces(x: np.ndarray) -> int:
    ink = x > 0.4 * x.max()
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    return int((np.asarray(ndimage.sum(ink, labels, range(1, n + 1))) >= 2).sum())


def holes(x: np.ndarray) -> int:
    """Pieces of paper (4-connected) that do not reach the border: the ink encloses them."""
    paper, n = ndimage.label(x <= 0.4 * x.max())
    border = set(np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]]).tolist())
    return len(set(range(1, n + 1)) - border)


def shapes(train: PairSet) -> list[str]:
    """Per digit: % in pieces and % with a hole, MNIST's round-0 training digits and pen digits."""
    pen = writers.load_pen()
    sets = {
        "MNIST": (train.input.reshape(-1, 14, 14).numpy(), train.classes.reshape(-1).numpy()),
        "pen": (pen.inputs[~pen.refused].numpy(), pen.labels[~pen.refused].numpy()),
    }
    lines = ["digit | MNIST: in pieces, with a hole (%) | pen: in pieces, with a hole (%)"]
    for digit in range(10):
        cells = []
        for x, labels in sets.values():
            of = x[labels == digit]
            split = np.mean([pieces(d) >= 2 for d in of])
            closed = np.mean([holes(d) >= 1 for d in of])
            cells.append(f"{100 * split:5.1f}, {100 * closed:5.1f}")
        lines.append(f"{digit} | " + " | ".join(cells))
    return lines


def misread(runs: Path, setting: str) -> tuple[PIL.Image.Image, list[str]]:
    pen = writers.load_pen()
    run = next(
        r
        for r in records.load(runs)
        if r.setting == setting and r.variant == "shared_aux" and r.round == 0
    )
    model = records.load_model(runs, run)
    x = pen.inputs
    read = model.predict(torch.stack((x, x), 1)).digit_probs[:, 0].argmax(-1)
    wrong = (read != pen.labels) & ~pen.refused
    rows, lines = [], []
    rng = np.random.default_rng(0)
    for digit in range(10):
        missed = np.flatnonzero((wrong & (pen.labels == digit)).numpy())
        index = np.sort(rng.choice(missed, min(COLUMNS, len(missed)), replace=False))
        rows.append([x[i].numpy() for i in index])
        lines.append(
            f"- {digit}s ({len(missed)} misread of "
            f"{int((pen.labels == digit).sum())}), shown read as: "
            + ", ".join(f"{int(read[i])} ({pen.groups[i]})" for i in index)
        )
    return grid(rows), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=str(ROOT / "train" / "runs" / "pen"))
    parser.add_argument("--setting", default="conventions")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $DIGITPAIR_DATA)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "pen"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mnist = MNIST(args.data_dir, download=False)
    conventions_picture(mnist).save(out / "conventions.png", optimize=True)
    print("\n".join(shapes(mnist.round(0, 1000, 0, 0).train)))
    picture, lines = misread(Path(args.runs), args.setting)
    picture.save(out / "misread.png", optimize=True)
    (out / "misread.md").write_text(
        f"# Pen digits `{args.setting}`'s round-0 `shared_aux` network misreads (validation)\n\n"
        "![misread pen digits, a row per digit 0-9, as the network sees them](misread.png)\n\n"
        + "\n".join(lines)
        + "\n\nWritten by `python benchmarks/pen_pictures.py`.\n"
    )
    print(f"written: {out / 'conventions.png'}, {out / 'misread.png'}, {out / 'misread.md'}")


if __name__ == "__main__":
    main()
