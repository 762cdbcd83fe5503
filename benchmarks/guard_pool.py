"""Pool the readers of n fits of consecutive seeds into one guard, and choose its limits and
measure it as `digitpair-train fit-guard` does.

`fit.train_guard` trains reader k of a fit of seed S and M readers from seed S * M + k, so the
readers of `fit-guard --seed 0` and `--seed 1` (three each) are the six that `fit-guard --members
6 --seed 0` trains, and those of seeds 2 and 3 the six of `--members 6 --seed 1`: n fits of seeds
nK ... nK + n - 1 are the fit of n x M readers and seed K (tests/test_guard.py checks this). This
runs `fit.fit` with its training step handed those readers: the same limits, rates and files,
without training them again.

    python benchmarks/guard_pool.py FIT_SEED_0 FIT_SEED_1 [...] --out FOLDER [--weights weights]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

import torch  # noqa: E402

from digitpair import guard  # noqa: E402
from digitpair.core.config import UNKNOWN  # noqa: E402
from digitpair.guard import fit as guard_fit  # noqa: E402


def pooled(folders: list[Path]) -> tuple[guard.GuardNet, dict, int]:
    """The readers of n fits of seeds nK, nK + 1, ... in seed order, as one GuardNet, the first
    fit's record and K; refused unless the fits differ in their seed alone (the same code and
    recipe)."""
    fits = [guard.load(folder) for folder in folders]
    first, n = fits[0].record, len(fits)
    if first["seed"] % n:
        raise SystemExit(f"{folders[0]}: {n} fits pool from a seed that {n} divides")
    same = ("architecture", "epochs", "fitted_on", "commit")
    for seed, (folder, fitted) in enumerate(zip(folders, fits), first["seed"]):
        if fitted.record["seed"] != seed or any(fitted.record.get(k) != first.get(k) for k in same):
            raise SystemExit(f"{folder}: not seed {seed} of the first fit's setting")
    arch = first["architecture"]
    net = guard.GuardNet(len(fits) * arch["members"], tuple(arch["channels"]), arch["hidden"])
    for k, reader in enumerate(r for fitted in fits for r in fitted.net.readers):
        net.readers[k] = reader
    return net.eval(), first, first["seed"] // n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="the fits of seeds 0, 1, ... in order")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    args = p.parse_args()
    torch.set_num_threads(1)
    net, first, seed = pooled(args.folders)
    arch, fitted_on = first["architecture"], first["fitted_on"]

    def trained(sources, members, seed, epochs, **kwargs):
        return net  # the pooled readers, in the order train_guard trains them

    guard_fit.train_guard = trained
    files = guard_fit.fit(
        args.weights,
        first["epochs"],
        seed,
        log=print,
        out=args.out,
        members=len(net.readers),
        **guard_fit.splits_of(first),
        untaught=fitted_on.get("untaught", ""),
        near_misses="near" in fitted_on["kinds"],
        # The fits' recipe as recorded; a term a record does not name was not used.
        recipe=guard_fit.Recipe(
            channels=tuple(arch["channels"]),
            hidden=arch["hidden"],
            entropic=fitted_on["entropic"],
            objectosphere=fitted_on.get("objectosphere", {}).get("weight", 0.0),
            alpha=fitted_on.get("elastic", {}).get("alpha", 0.0),
        ),
        commit=first.get("commit", UNKNOWN),  # the readers' code, "unknown" where not recorded
    )
    print("wrote " + ", ".join(map(str, files)))


if __name__ == "__main__":
    main()
