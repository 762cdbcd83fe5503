"""A study's networks read again on the pen digits as the page's pen draws them now (validation).

Until commit cfa14fb, `pen.random_place` moved each stroke of a character by its own random
offset: a 4's or a 5's two strokes, a 7's bar, a 0 lifted once came apart on the paper. Every pen
figure a run record holds (`pen_digit_acc`, `pen_per_digit`) was measured on drawings so
scattered, and records are never edited. This reads each run's network, from the weights in its
run folder (on the machine that trained it), on the pen digits drawn whole, beside what its record
says, and sets each setting against `--baseline` round by round, as the study's report does.
Validation only: the pen digits choose, no network trains on them.

    python benchmarks/pen_reread.py [--runs train/runs/pen] [--baseline style]
        [--out benchmarks/pen_reread.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from digitpair.core import writers
from digitpair.core.models import VARIANTS
from digitpair.lab import records

ROOT = Path(__file__).resolve().parents[1]


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {spread:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=str(ROOT / "train" / "runs" / "pen"))
    parser.add_argument("--baseline", default="style", help="the setting set against")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "pen_reread.json"))
    args = parser.parse_args()

    pen = writers.load("pen")
    runs = [r for r in records.load(args.runs) if VARIANTS[r.variant].digit_loss]
    cells = []
    for r in runs:
        model = records.load_model(args.runs, r)
        now = writers.score(model, pen, rounds=1)
        cells.append(
            {
                "setting": r.setting,
                "variant": r.variant,
                "round": r.round,
                "recorded": r.metrics.pen_digit_acc,
                "whole": now.digit_acc,
                "whole_per_digit": list(now.per_digit),
            }
        )
    Path(args.out).write_text(
        json.dumps(
            {
                "use": "validation (used for choices): no network trained on these digits",
                "runs": str(Path(args.runs).resolve().relative_to(ROOT)),
                "set": pen.title,
                "recorded": "pen_digit_acc of the run's record: strokes scattered (before cfa14fb)",
                "whole": "pen digit accuracy read now, each character drawn whole",
                "cells": cells,
            },
            indent=2,
        )
        + "\n"
    )

    def of(setting, variant, key):
        return {
            c["round"]: c[key]
            for c in cells
            if c["setting"] == setting and c["variant"] == variant and c[key] is not None
        }

    settings = list(dict.fromkeys(c["setting"] for c in cells))
    variants = [v for v in VARIANTS if any(c["variant"] == v for c in cells)]
    print(
        f"pen digit accuracy (%), validation, mean ± sample std over rounds; against "
        f"{args.baseline}: paired by round (points). Recorded: strokes scattered; whole: drawn "
        "whole\n"
    )
    print("| setting | variant | recorded | whole | recorded - baseline | whole - baseline | n |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in settings:
        for v in variants:
            old, new = of(s, v, "recorded"), of(s, v, "whole")
            if not new:
                continue
            base_old, base_new = of(args.baseline, v, "recorded"), of(args.baseline, v, "whole")
            both = sorted(set(new) & set(base_new) & set(old) & set(base_old))
            differences = [
                mean_std([table[k] - base[k] for k in both]) if both and s != args.baseline else "-"
                for table, base in ((old, base_old), (new, base_new))
            ]
            recorded = mean_std(list(old.values())) if old else "unknown"
            print(
                f"| {s} | {v} | {recorded} | {mean_std(list(new.values()))} | "
                f"{differences[0]} | {differences[1]} | {len(new)} |"
            )


if __name__ == "__main__":
    main()
