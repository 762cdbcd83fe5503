"""Paired difference of test (or validation) accuracy between two record folders of the same grid.

Runs with the same name (setting, variant, round) share data and init seeds, so the per-round
difference isolates what changed between the two folders (precision, machine, code, encoder).
Decisions are made on `--metric val_acc`; test accuracy only reports what they cost. E.g.

    python benchmarks/paired_diff.py train/runs/evidence/best-padded train/runs/best --metric
    val_acc
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from digitpair.lab import records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--metric", choices=("test_acc", "val_acc"), default="test_acc")
    args = p.parse_args()
    a = {r.name: r for r in records.load(args.a)}
    b = {r.name: r for r in records.load(args.b)}
    diffs = defaultdict(list)
    for name in sorted(a.keys() & b.keys()):
        va, vb = getattr(a[name].metrics, args.metric), getattr(b[name].metrics, args.metric)
        if va is not None and vb is not None:
            diffs[(a[name].setting, a[name].variant)].append(vb - va)
    what = "test" if args.metric == "test_acc" else "validation"
    print(
        f"{what} pair accuracy, {args.b} minus {args.a}, paired by run (same data and init seeds):"
    )
    for (setting, variant), d in diffs.items():
        sd = statistics.stdev(d) if len(d) > 1 else float("nan")
        print(
            f"  {setting:>14} {variant:<13} {statistics.fmean(d):+6.2f} ± {sd:.2f} "
            f"(n={len(d)}, standard error {sd / len(d) ** 0.5:.2f})"
        )


if __name__ == "__main__":
    main()
