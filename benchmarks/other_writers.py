"""Real drawings are not MNIST: the app's whole path on handwriting by writers no run trained on.

Three validation sets (`digitpair/core/writers.py`, used for choices only, never trained on): the
USPS train split (7291 digits), scikit-learn's UCI digits (1797 digits, 13 writers) and the
pen-drawn digits (8,685 digits by the writers of 12 labs, `digitpair/core/pen.py`), the last drawn
with the page's pen (24 px) and again with a thinner and a thicker one (12 and 36 px). Each digit
goes through `digitpair.core.drawing.preprocess` exactly as the app calls it, and is read by the
exported networks as the app loads them (`load_pretrained`), every exported set (ours in `weights/`,
the 2020 report's head in `weights/fc/`). Per variant: digit accuracy, pair accuracy on random
pairs, each digit's accuracy, each lab's (pen) and the most frequent confusions (protocol in
`digitpair/core/writers.py`).

The tables go to stdout and, with each exported run's MNIST test accuracy and provenance, to
`benchmarks/other_writers.json`, from which `python train/readme_tables.py` writes
docs/other-writers.md's table.

    pip install -e '.[bench]'      # scikit-learn, for the UCI digits
    python benchmarks/other_writers.py [--weights weights] [--rounds 10] [--seed 0] [--out
    benchmarks/other_writers.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from digitpair.core import writers
from digitpair.core.models import count_members
from digitpair.core.weights import CONFIG_NAME, NETWORKS, read_config
from digitpair.guard.pretrained import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
PEN_WIDTHS = (12, 36)  # px: a thinner and a thicker pen beside the page's 24
MIN_LAB = 150  # labs with fewer digits are shown, but too few to judge alone


def load_sets() -> list[writers.Writers]:
    sets = [writers.load(name) for name in writers.LOADERS]
    return sets + [writers.load_pen(brush) for brush in PEN_WIDTHS]


def print_set(w: writers.Writers, results: dict) -> None:
    print(f"{w.title} (validation)\n")
    print(
        "| networks | variant | digits (%) | pairs (%) | worst digit | most frequent confusions "
        "(true->read: n) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for networks, rows in results.items():
        for name, r in rows.items():
            got = r[w.name]
            if got["digit_acc"] is None:
                digits = worst = confused = "-"
            else:
                digits = f"{got['digit_acc']:.2f}"
                low = min(range(10), key=lambda d: got["per_digit"][d])
                worst = f"{low}: {got['per_digit'][low]:.1f}"
                confused = ", ".join(f"{t}->{p}: {n}" for t, p, n in got["confusions"])
            print(
                f"| {networks} | {name} | {digits} | {got['pair_acc']:.2f} | {worst} | {confused} |"
            )
    print()


def print_digits_and_labs(w: writers.Writers, results: dict) -> None:
    """Each digit's and each lab's accuracy (%), for the variants with digit outputs."""
    labs = sorted(set(w.groups))
    sizes = {lab: int((w.groups == lab).sum()) for lab in labs}
    print(f"{w.title}: by digit and by lab (validation; labs under {MIN_LAB} digits in brackets)\n")
    header = [
        *(str(d) for d in range(10)),
        *(lab if sizes[lab] >= MIN_LAB else f"({lab})" for lab in labs),
    ]
    print("| networks | variant | " + " | ".join(header) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in header) + " |")
    for networks, rows in results.items():
        for name, r in rows.items():
            got = r[w.name]
            if got["digit_acc"] is None:
                continue
            cells = [f"{v:.1f}" for v in got["per_digit"]] + [
                f"{got['per_group'][lab]:.1f}" for lab in labs
            ]
            print(f"| {networks} | {name} | " + " | ".join(cells) + " |")
    print("\ndigits per lab: " + ", ".join(f"{lab} {n}" for lab, n in sizes.items()) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--weights",
        default=str(ROOT / "weights"),
        help="folder (or Hub repo id) of exported variants",
    )
    parser.add_argument(
        "--rounds", type=int, default=10, help="permutations of each set drawn into pairs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "other_writers.json"))
    args = parser.parse_args()

    sets = load_sets()
    results = {}
    for networks, sub in NETWORKS.items():
        rows = {}
        for name, model in load_pretrained(args.weights, networks=networks).items():
            config = read_config(Path(args.weights) / sub / name / CONFIG_NAME)
            rows[name] = {
                "members": count_members(model),
                "mnist_test_acc": config.metrics.test_acc,
                "run": config.run,
                "export_commit": config.commit,
                **{
                    w.name: dataclasses.asdict(writers.score(model, w, args.rounds, args.seed))
                    for w in sets
                },
            }
        results[networks] = rows

    report = {
        "use": "validation (used for choices): no network trained on these digits",
        "sets": {w.name: w.title for w in sets},
        "seed": args.seed,
        "rounds": args.rounds,
        "networks": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{', '.join(report['sets'].values())}; models from {args.weights}; written to {args.out}\n"
    )
    for w in sets:
        print_set(w, results)
        if w.groups is not None:
            print_digits_and_labs(w, results)


if __name__ == "__main__":
    main()
