"""Real drawings are not MNIST: the app's whole path on handwriting from writers no run trained on.

scikit-learn ships the UCI optical-recognition digits (`sklearn.datasets.load_digits`, Alpaydin
& Kaynak 1998): 1797 digits, the UCI test set, by 13 writers of that collection's 43. They were
collected separately from MNIST (NIST SD-1/SD-3); no digitpair run saw them. Each is a 32x32
binary scan reduced to an 8x8 grid of ink counts 0-16.

How a digit reaches the app's path: the counts scaled to 0-255 (16 -> 255), the 8x8 grid
enlarged 8x to 64x64 with bilinear interpolation (smooth strokes, as a scan or a canvas has,
instead of 8 px blocks), a 16 px black margin added (the paper colour preprocess reads off the
border), i.e. a 96x96 white-on-black grayscale image; then `digitpair.drawing.preprocess`
exactly as the app calls it, and the models as the app loads them (`load_pretrained`).

Digit accuracy: every digit once in each position (digit i paired with digit i+1, cyclically),
argmax of the digit distributions, both positions counted. Pair accuracy: random pairs of two
different digits (`--rounds` permutations of all 1797, consecutive digits paired, seed
`--seed`), target first <= second, the model's P(first <= second) > 0.5.

Both sets of exported networks (ours and the 2020 report's, `weights/` and `weights/fc/`) are
measured; the table goes to stdout and, with the exported runs' own MNIST test accuracy and
provenance, to `benchmarks/other_writers.json`, from which `python -m digitpair.report` writes the
README's table.

    pip install -e '.[bench]'
    python benchmarks/other_writers.py [--weights weights] [--rounds 10] [--seed 0] [--out benchmarks/other_writers.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from digitpair.drawing import preprocess
from digitpair.models import count_members
from digitpair.weights import CONFIG_NAME, NETWORKS, load_pretrained

ROOT = Path(__file__).resolve().parents[1]
SCALE, MARGIN = 8, 16


def render(counts: np.ndarray) -> np.ndarray:
    """(8, 8) ink counts 0-16 -> (96, 96) uint8, white digit on black, as a drawing reaches preprocess."""
    gray = PIL.Image.fromarray((counts * (255 / 16)).astype(np.float32))
    big = np.asarray(gray.resize((8 * SCALE, 8 * SCALE), PIL.Image.Resampling.BILINEAR))
    return np.pad(np.clip(big, 0, 255).round().astype(np.uint8), MARGIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"), help="folder (or Hub repo id) of exported variants")
    parser.add_argument("--rounds", type=int, default=10, help="permutations of the digits drawn into pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "other_writers.json"))
    args = parser.parse_args()

    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.stack([preprocess(render(img)) for img in digits.images])            # (1797, 14, 14)
    labels = torch.as_tensor(digits.target)
    n = len(labels)

    g = torch.Generator().manual_seed(args.seed)
    idx = torch.cat([torch.randperm(n, generator=g)[: n // 2 * 2].view(-1, 2) for _ in range(args.rounds)])
    cyclic = torch.stack((torch.arange(n), torch.arange(n).roll(-1)), 1)             # each digit once per position
    target = labels[idx[:, 0]] <= labels[idx[:, 1]]

    results = {}
    for networks, sub in NETWORKS.items():
        rows = {}
        for name, model in load_pretrained(args.weights, networks=networks).items():
            pred = model.predict(x[idx])
            pair_acc = 100.0 * ((pred.p_leq > 0.5) == target).float().mean().item()
            digit_probs = model.predict(x[cyclic]).digit_probs
            digit_acc = (None if digit_probs is None else
                         100.0 * (digit_probs.argmax(-1) == labels[cyclic]).float().mean().item())
            config = json.loads((Path(args.weights) / sub / name / CONFIG_NAME).read_text())
            rows[name] = {"members": count_members(model), "digit_acc": digit_acc, "pair_acc": pair_acc,
                          "mnist_test_acc": config["metrics"]["test_acc"], "run": config["run"],
                          "export_commit": config["commit"]}
        results[networks] = rows

    report = {"data": f"{n} UCI digits (sklearn load_digits, 13 writers)", "pairs": len(idx),
              "seed": args.seed, "rounds": args.rounds, "networks": results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['data']}, models from {args.weights}; {len(idx)} random pairs "
          f"(seed {args.seed}, {args.rounds} permutations); written to {args.out}\n")
    print("| networks | variant | members | digit accuracy (%) | pair accuracy (%) | MNIST test pairs, this run (%) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for networks, rows in results.items():
        for name, r in rows.items():
            digit = "-" if r["digit_acc"] is None else f"{r['digit_acc']:.2f}"
            print(f"| {networks} | {name} | {r['members']} | {digit} | {r['pair_acc']:.2f} | {r['mnist_test_acc']} |")


if __name__ == "__main__":
    main()
