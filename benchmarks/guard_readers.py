"""Each reader of fitted guards judged alone under fit-guard's protocol, then the best by the
choosing split pooled: how far a reader's seed moves the rates, and whether picking readers pays;
prints a markdown table.

A guard's network averages a few readers trained alike from different seeds (`fit.train_guard`:
reader k of a fit of seed S and M readers from seed S * M + k). Here each reader of the given fits
is a guard of its own: its limits chosen on the choosing writers and kinds and its rates measured
on the held-out ones, as `digitpair-train fit-guard` does (`fit.limits_and_rates`). Then the
readers, ranked by the choosing split alone (its mean of "not a digit" over characters and kinds,
`fit.chosen_mean`, what `fit.choose` ranks limits by), are pooled best first, 1 to --pool of them;
with --groups M, the guards `fit-guard --members M --seed m` would fit (readers of seeds M * m to
M * m + M - 1) wherever the fits hold all of their readers; and each fit as fitted, which must give
its record's rates again. Every rate is validation.

    python benchmarks/guard_readers.py FOLDER [FOLDER ...] [--pool 3] [--groups 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

import torch  # noqa: E402

from benchmarks import guard_fits  # noqa: E402
from digitpair import guard  # noqa: E402
from digitpair.guard import data as guard_data  # noqa: E402
from digitpair.guard import fit as guard_fit  # noqa: E402
from digitpair.guard.pretrained import load_pretrained  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="fitted guards (guard.json inside)")
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--networks", default="ours")
    p.add_argument("--pool", type=int, default=3, help="pool the best 1 ... POOL readers")
    p.add_argument("--groups", type=int, help="pool as fit-guard --members GROUPS fits")
    args = p.parse_args()
    torch.set_num_threads(1)

    fits = [guard.load(folder) for folder in args.folders]
    split = guard_fit.splits_of(fits[0].record)
    if any(guard_fit.splits_of(fitted.record) != split for fitted in fits):
        raise SystemExit(
            "the fits hold out different characters or USPS digits: their splits differ"
        )
    splits = guard_fit.held_out(guard_data.load, **split)
    fields = guard_fit.fields_of(splits)
    models = guard_fit.readers(load_pretrained(args.weights, networks=args.networks))
    readings = {key: guard_fit.reading(models, f) for key, f in fields.items()}

    logits = {}  # {reader's name: {set key: (1, n, 11) logits}}
    names = {}  # {fit's folder: its readers' names}
    seeds = {}  # {reader's seed: its name}
    for folder, fitted in zip(args.folders, fits):
        arch = fitted.record["architecture"]
        for k, reader in enumerate(fitted.net.readers):
            alone = guard.GuardNet(1, tuple(arch["channels"]), arch["hidden"])
            alone.readers[0] = reader
            seed = fitted.record["seed"] * arch["members"] + k
            name = f"{folder}, reader {k} (seed {seed})"
            logits[name] = {key: guard_fit.guard_logits(alone, f) for key, f in fields.items()}
            names.setdefault(folder, []).append(name)
            seeds[seed] = name

    def pooled(readers: list[str]) -> dict:
        read = {
            key: guard_fit.read_logits(torch.cat([logits[n][key] for n in readers]))
            for key in fields
        }
        return guard_fit.limits_and_rates(guard_fit.judged_sets(splits, read, readings))

    def row(label: str, chosen: dict) -> str:
        return "| " + " | ".join([label, *guard_fits.cells(chosen)]) + " |"

    print("\n".join(guard_fits.header("guard", learned=False)))
    alone = {name: pooled([name]) for name in logits}
    for name, chosen in alone.items():
        print(row(name, chosen), flush=True)
    ranked = sorted(alone, key=lambda n: -guard_fit.chosen_mean(alone[n]["choice"]))
    for n in range(2, args.pool + 1):
        print(row(f"the best {n} by the choosing split", pooled(ranked[:n])), flush=True)
    for m in range(max(seeds) // args.groups + 1 if args.groups else 0):
        group = range(args.groups * m, args.groups * (m + 1))
        if all(seed in seeds for seed in group):
            label = f"--members {args.groups} --seed {m} (readers of seeds {group[0]}-{group[-1]})"
            print(row(label, pooled([seeds[seed] for seed in group])), flush=True)
    for folder, fitted in zip(args.folders, fits):
        chosen = pooled(names[folder])
        recorded = fitted.record["networks"][args.networks]
        # The rates, not the limits: a limit is a quantile of float32 outputs, whose last digits
        # vary with the CPU's kernels; the drawings on either side of it do not.
        same = all(chosen[k] == recorded[k] for k in ("rates", "choice"))
        print(row(f"{folder} as fitted ({'as' if same else 'NOT as'} recorded)", chosen))


if __name__ == "__main__":
    main()
