"""Real drawings are not MNIST: the app's whole path on handwriting by writers no run trained on.

Two validation sets (`digitpair/writers.py`, used for choices only, never trained on): the USPS
train split (7291 digits) and scikit-learn's UCI digits (1797 digits, 13 writers). Each digit is
rendered as a canvas image, goes through `digitpair.drawing.preprocess` exactly as the app calls
it, and is read by the exported networks as the app loads them (`load_pretrained`), every
exported set (ours in `weights/`, the 2020 report's head in `weights/fc/`). Per variant: digit
accuracy, pair accuracy on random pairs, each digit's accuracy and the most frequent confusions
(protocol in `digitpair/writers.py`).

The table goes to stdout and, with each exported run's MNIST test accuracy and provenance, to
`benchmarks/other_writers.json`, from which `python train/readme_tables.py` writes the README's table.

    pip install -e '.[test]'      # scikit-learn, for the UCI digits
    python benchmarks/other_writers.py [--weights weights] [--rounds 10] [--seed 0] [--out benchmarks/other_writers.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from digitpair import writers
from digitpair.models import count_members
from digitpair.weights import CONFIG_NAME, NETWORKS, load_pretrained, read_config

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=str(ROOT / "weights"), help="folder (or Hub repo id) of exported variants")
    parser.add_argument("--rounds", type=int, default=10, help="permutations of each set drawn into pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "other_writers.json"))
    args = parser.parse_args()

    sets = [writers.load(name) for name in writers.LOADERS]
    results = {}
    for networks, sub in NETWORKS.items():
        rows = {}
        for name, model in load_pretrained(args.weights, networks=networks).items():
            config = read_config(Path(args.weights) / sub / name / CONFIG_NAME)
            rows[name] = {"members": count_members(model), "mnist_test_acc": config.metrics.test_acc,
                          "run": config.run, "export_commit": config.commit,
                          **{w.name: dataclasses.asdict(writers.read(model, w, args.rounds, args.seed)) for w in sets}}
        results[networks] = rows

    report = {"use": "validation (used for choices): no network trained on these digits",
              "sets": {w.name: w.title for w in sets}, "seed": args.seed, "rounds": args.rounds,
              "networks": results}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{', '.join(report['sets'].values())}; models from {args.weights}; written to {args.out}\n")
    for w in sets:
        print(f"{w.title} (validation)\n")
        print("| networks | variant | digits (%) | pairs (%) | worst digit | most frequent confusions (true->read: n) |")
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
                print(f"| {networks} | {name} | {digits} | {got['pair_acc']:.2f} | {worst} | {confused} |")
        print()


if __name__ == "__main__":
    main()
