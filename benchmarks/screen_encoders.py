"""Validation-only screen of candidate encoder trunks, paired with `padded` run by run.

Trains `best`'s main setting (adam_safe) with a candidate trunk on the grid's own seeds (data
seed = round, init seed from (setting, variant, round)), never evaluating the test pairs, and
compares each run's validation accuracy with the `padded` run of the same round in
train/runs/evidence/best-padded. This is how `pooled` was chosen (benchmarks/README.md); its output
from that session is benchmarks/encoder_screen.jsonl.

    python benchmarks/screen_encoders.py run OUT.jsonl pooled+bf16 --models shared_aux,simple_cnn
    --rounds 10
    python benchmarks/screen_encoders.py compare OUT.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from digitpair.core.data import MNIST
from digitpair.core.models import ENCODERS, VARIANTS, pooled_trunk
from digitpair.lab import records
from digitpair.lab.study import Study, init_seed
from digitpair.lab.training import train_run

# `pooled`'s layout at other widths (first, second convolution): the candidates screened beside it.
CANDIDATES = {
    "pooled_16_64": (partial(pooled_trunk, 16, 64), 9 * 64),
    "pooled_32_64": (partial(pooled_trunk, 32, 64), 9 * 64),
}


def run(out: Path, candidate: str, models: list[str], rounds: int, data_dir) -> None:
    ENCODERS.update(CANDIDATES)  # this process only
    encoder, _, precision = candidate.partition("+")
    base = Study.load(Path(__file__).parents[1] / "train/studies/best.toml").settings["adam_safe"]
    mnist = MNIST(data_dir)
    torch.set_num_threads(1)
    for r in range(rounds):
        for model in models:
            cfg = replace(
                base,
                variant=model,
                encoder=encoder,
                precision=precision or "fp32",
                data_seed=r,
                init_seed=init_seed("adam_safe", model, r),
                test=False,
            )
            metrics = train_run(cfg, mnist, torch.device("cpu")).metrics
            with open(out, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "enc": candidate,
                            "model": model,
                            "round": r,
                            "val": metrics.val_acc,
                            "sec": metrics.wall_seconds,
                        }
                    )
                    + "\n"
                )


def compare(path: Path, reference: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    padded = {r.name: r.metrics.val_acc for r in records.load(reference)}
    print(f"validation pair accuracy, candidate minus padded ({reference}), paired by round:")
    for enc in dict.fromkeys(r["enc"] for r in rows):
        for model in VARIANTS:
            mine = [r for r in rows if r["enc"] == enc and r["model"] == model]
            if len(mine) < 2:
                continue
            diffs = [r["val"] - padded[f"adam_safe-{model}-r{r['round']:02d}"] for r in mine]
            se = statistics.stdev(diffs) / len(diffs) ** 0.5
            print(
                f"  {enc:<18} {model:<13} {statistics.fmean(diffs):+.2f} (standard error {se:.2f}, "
                f"n={len(diffs)})"
                f"  {statistics.fmean(r['sec'] for r in mine):5.1f} s/run"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument(
        "candidate",
        help="an encoder name (ENCODERS or pooled_16_64, pooled_32_64), +bf16 for autocast",
    )
    r.add_argument("--models", default=",".join(VARIANTS))
    r.add_argument("--rounds", type=int, default=10)
    r.add_argument("--data-dir", default=None)
    c = sub.add_parser("compare")
    c.add_argument("path", type=Path)
    c.add_argument("--reference", type=Path, default=Path("train/runs/evidence/best-padded"))
    args = p.parse_args()
    if args.command == "run":
        run(args.out, args.candidate, args.models.split(","), args.rounds, args.data_dir)
    else:
        compare(args.path, args.reference)


if __name__ == "__main__":
    main()
