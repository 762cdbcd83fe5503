"""What the guard's goals cost each other: its limits chosen on the choosing split under other
budgets of real digits flagged, and the held-out rates each gives; prints a markdown table.

`digitpair-train fit-guard` chooses the limits so that at most fit.TARGET % (0.7) of each budgeted
set's digits the networks read right are flagged on the choosing writers (`fit.choose`), a margin
under the goal's 1 %. This script chooses them again, the same way, at each of BUDGETS, and
measures each choice on the held-out writers and kinds (validation): how many real digits the
guard's network must flag to call 95 % of the pen letters and symbols "not a digit". A budget
over the goal's 1 % is not a candidate for the served limits; it is read here only to measure
the distance to the goal.

Then which choosing writers' digits set the limit: the writers of the TAIL read-right pen digits
the guard finds least like a digit, and the choice made again at the served budget without the
writer who holds most of them, to show how much one writer's way of writing moves the limit (a
measurement, not a candidate: leaving a writer out is no way to choose).

--uci-half budgets half of UCI's digits on the choosing side beside the pen and MNIST (split by a
hash of each one's index, as `fit-guard --uci` splits UCI) and measures UCI on the other half:
how the limits move when they see digits like UCI's, with UCI's rate still held out. UCI records
no writer, so that rate predicts other digits of UCI's writers, not other writers. --uci-budget
gives that half a budget of its own (UCI's goal is twice the others', 2 %).

    python benchmarks/guard_budget.py [--weights weights] [--networks ours] [--guard FOLDER]
        [--budgets 0.5,0.6,0.7] [--uci-half [--uci-budget 1.4]]
"""

from __future__ import annotations

import argparse
import collections
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

BUDGETS = (guard_fit.TARGET, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)  # % of digits read right
TAIL = 30  # the choosing split's read-right pen digits least like a digit, by writer


def without(judged: guard_fit.Judged, keep: np.ndarray) -> guard_fit.Judged:
    """`judged` over the drawings `keep` marks."""
    return dataclasses.replace(
        judged,
        p=judged.p[keep],
        scores={name: score[keep] for name, score in judged.scores.items()},
        readers=judged.readers[:, keep],
        labels=judged.labels[keep],
    )


def main() -> None:
    p = guard_fits.guard_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    p.add_argument(
        "--uci-half",
        action="store_true",
        help="budget half of UCI's digits on the choosing side too (by a hash of each one's "
        "index), and measure UCI on the other half",
    )
    p.add_argument(
        "--uci-budget",
        type=float,
        help="with --uci-half: UCI's half budgeted at this %% instead of the row's budget",
    )
    p.add_argument(
        "--budgets",
        type=lambda text: tuple(float(b) for b in text.split(",")),
        default=BUDGETS,
        help="comma-separated %% of digits read right, e.g. 0.5,0.6,0.7 [default: %(default)s]",
    )
    args = p.parse_args()
    torch.set_num_threads(1)

    fitted = guard.load(args.guard or args.weights / guard.FOLDER)
    splits = guard_fit.held_out(guard_data.load, **guard_fit.splits_of(fitted.record))
    if args.uci_half:
        if "uci" in guard.learned_halves(fitted.record):
            p.error("--uci-half: this guard learned from half of UCI, measured on the other")
        uci, every = splits["report"]["uci"]
        half = guard_fit.half_roles("uci", uci) == "report"  # the half a --uci fit measures
        splits["choose"]["uci"], splits["report"]["uci"] = (uci, every & half), (uci, every & ~half)
    sets = guard_fits.judged(fitted.net, splits, args.weights, args.networks)
    print("\n".join(guard_fits.header("budget on the choosing writers, %", learned=False)))
    for budget in args.budgets:
        target = {name: budget for name in sets["choose"][0]}
        if args.uci_half and args.uci_budget is not None:
            target["uci"] = args.uci_budget
        chosen = guard_fit.limits_and_rates(sets, target=target)
        print("| " + " | ".join([f"{budget:g}", *guard_fits.cells(chosen)]) + " |", flush=True)

    part, keep = splits["choose"]["pen"]
    writers = part.source[keep & part.accepted]
    digits, others = sets["choose"]
    pen = digits["pen"]
    limits = fitted.limits[args.networks]
    odds = pen.odds(limits.score, limits.weight).max(0)  # a drawing's likelier box to be flagged
    right = np.flatnonzero(~pen.misread().any(0))
    tail = right[np.argsort(-odds[right], kind="stable")[:TAIL]]
    held = collections.Counter(writers[tail].tolist()).most_common()
    print(
        f"\nThe {TAIL} read-right pen digits of the choosing writers ({len(set(writers))} writers, "
        f"{len(writers)} digits) the guard finds least like a digit, by writer: "
        + ", ".join(
            f"{w} {n} (of its {(writers == w).sum()}: "
            f"{' '.join(sorted(set(pen.labels[writers == w])))})"
            for w, n in held
        )
    )
    first = held[0][0]
    alt = {**sets, "choose": ({**digits, "pen": without(pen, writers != first)}, others)}
    print("\n" + "\n".join(guard_fits.header("choosing pen digits", learned=False)))
    for name, judged in (("all", sets), (f"all but {first}", alt)):
        cells = guard_fits.cells(guard_fit.limits_and_rates(judged))
        print("| " + " | ".join([name, *cells]) + " |", flush=True)


if __name__ == "__main__":
    main()
