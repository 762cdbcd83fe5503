"""The networks' own doubt beside the guard's: the guard's odds with the networks' odds against
their likeliest digit added, at weights WEIGHTS, each judged as `digitpair-train fit-guard`
judges; prints a markdown table.

The guard calls a drawing "not a digit" where its score, less a weight times its odds for the
digit the networks read, passes a limit (digitpair/guard/__init__.py). The issue names "today's
evidence combined with it" as a lever: before the guard, the page judged by the networks' own
readings alone. Their mean digit distribution over the variants with digit outputs (as the
cards show it) gives the doubt -logit(its largest probability); this script adds c times that to
the odds, chooses the limits on the choosing writers and kinds as `fit.choose` does (every score,
weight and share of the 0.7 % budget), and measures the choice on the held-out ones (validation).
c = 0 is the guard as fitted: its row gives the recorded rates again. A c is picked on the
choosing split's mean alone, as `fit.choose` ranks limits.

    python benchmarks/guard_doubt.py [--weights weights] [--networks ours] [--guard FOLDER]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import guard_fits  # noqa: E402
from digitpair import guard  # noqa: E402
from digitpair.guard import data as guard_data  # noqa: E402
from digitpair.guard import fit as guard_fit  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)  # of the networks' doubt in the odds


@dataclasses.dataclass(frozen=True)
class WithDoubt(guard_fit.Judged):
    """A judged set whose odds carry `doubt` times the networks' own doubt."""

    doubt: float = 0.0

    def odds(self, score: str, weight: float) -> np.ndarray:
        likeliest = torch.from_numpy(self.readers.max(-1)).double()  # (2, n)
        return super().odds(score, weight) - self.doubt * guard.logit(likeliest).numpy()


def with_doubt(judged: guard_fit.Judged, doubt: float) -> WithDoubt:
    fields = {f.name: getattr(judged, f.name) for f in dataclasses.fields(judged)}
    return WithDoubt(**fields, doubt=doubt)


def main() -> None:
    p = guard_fits.guard_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    args = p.parse_args()
    torch.set_num_threads(1)

    fitted = guard.load(args.guard or args.weights / guard.FOLDER)
    splits = guard_fit.held_out(guard_data.load, **guard_fit.splits_of(fitted.record))
    sets = guard_fits.judged(fitted.net, splits, args.weights, args.networks)
    print("\n".join(guard_fits.header("networks' doubt, weight", learned=False)))
    chosen = {}
    for c in WEIGHTS:
        weighed = {
            split: tuple({name: with_doubt(s, c) for name, s in named.items()} for named in judged)
            for split, judged in sets.items()
        }
        chosen[c] = guard_fit.limits_and_rates(weighed)
        print("| " + " | ".join([f"{c:g}", *guard_fits.cells(chosen[c])]) + " |", flush=True)
    pick = max(WEIGHTS, key=lambda c: (guard_fit.chosen_mean(chosen[c]["choice"]), -c))
    recorded = fitted.record["networks"][args.networks]["rates"] == chosen[0.0]["rates"]
    print(
        f"\npicked by the choosing split's mean: weight {pick:g}; weight 0 gives "
        f"{'the' if recorded else 'NOT the'} rates guard.json records"
    )


if __name__ == "__main__":
    main()
