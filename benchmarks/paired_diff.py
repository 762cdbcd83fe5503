"""Paired difference of test accuracy between two record folders of the same grid.

Runs with the same name (setting, variant, round) share data and init seeds, so the per-round
difference isolates what changed between the two folders (precision, machine, code), e.g.

    python benchmarks/paired_diff.py train/runs/best train/runs/best-bf16
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from digitpair.study import load_records


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = p.parse_args()
    a = {Path(r["dir"]).name: r for r in load_records(args.a)}
    b = {Path(r["dir"]).name: r for r in load_records(args.b)}
    diffs = defaultdict(list)
    for name in sorted(a.keys() & b.keys()):
        key = (a[name]["setting"], a[name]["variant"])
        diffs[key].append(b[name]["final"]["test_acc"] - a[name]["final"]["test_acc"])
    print(f"test pair accuracy, {args.b} minus {args.a}, paired by run (same data and init seeds):")
    for (setting, variant), d in diffs.items():
        sd = statistics.stdev(d) if len(d) > 1 else float("nan")
        print(f"  {setting:>14} {variant:<13} {statistics.fmean(d):+6.2f} ± {sd:.2f} "
              f"(n={len(d)}, standard error {sd / len(d) ** 0.5:.2f})")


if __name__ == "__main__":
    main()
