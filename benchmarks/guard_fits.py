"""Fitted guards side by side, from their records: the choosing split that ranked them, then the
held-out rates (validation), as a markdown table.

Each folder is one `digitpair-train fit-guard --out FOLDER` (or `weights/guard/`); its
guard.json holds the limits `fit.choose` picked on the choosing writers and kinds, and the rates
on both splits (`fit.measure`). "choosing: mean" is what `fit.choose` ranks limits by
(`fit.chosen_mean` of the choosing split). "learned by all" compares fits whose characters
differ (`fit-guard --every-character`): the mean of the per-character rates over the characters
that every listed fit learned from, on the choosing writers, then the held-out ones. Nothing is
measured again here (`benchmarks/guard.py` does that for the served guard).

    python benchmarks/guard_fits.py weights/guard FOLDER [FOLDER ...] [--networks ours]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

from digitpair.guard import fit as guard_fit  # noqa: E402
from digitpair.guard.pretrained import load_pretrained  # noqa: E402

DIGITS = ("pen", "mnist", "mnist_pen", "usps", "uci")
RATES = (  # the rates' columns, as `cells` fills them
    "score | choosing: mean | validation: characters | unseen characters "
    "| learned by all: choosing, validation | unseen kinds | misread pen digits flagged "
    "| read right flagged: pen, MNIST, MNIST penned, USPS, UCI"
)


def guard_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the scripts that measure one guard again: --weights, --networks, --guard."""
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--networks", default="ours")
    p.add_argument("--guard", type=Path, help="the guard's folder [default: WEIGHTS/guard]")
    return p


def judged(net, splits: guard_fit.Splits, weights: Path, networks: str) -> dict:
    """`splits` (`fit.held_out`) read by the guard's `net` and by the digit readers of the
    `networks` in `weights`: `fit.judged_sets`' {split: (digit sets, non-digit sets)}."""
    fields = guard_fit.fields_of(splits)
    models = guard_fit.readers(load_pretrained(weights, networks=networks))
    return guard_fit.judged_sets(
        splits,
        {key: guard_fit.guard_read(net, f) for key, f in fields.items()},
        {key: guard_fit.reading(models, f) for key, f in fields.items()},
    )


def learned_by_all(records: list[dict]) -> set[str]:
    """The characters every record measured on its choosing writers (none held out there)."""
    return set.intersection(*(set(r["choice"]["pen_characters"]["per_label"]) for r in records))


def mean_over(rates: dict, characters: set[str]) -> float:
    """The unweighted mean of a split's per-character rates over `characters`."""
    per = rates["pen_characters"]["per_label"]
    return sum(per[c] for c in characters) / len(characters)


def header(*first: str, learned: bool = True) -> list[str]:
    """A markdown table's first two lines: the `first` columns, then the rates' (`cells`;
    `learned`: with the "learned by all" column)."""
    columns = [*first, *(c for c in RATES.split(" | ") if learned or "learned" not in c)]
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def cells(chosen: dict, characters: set[str] | None = None) -> list[str]:
    """The rates' cells of a set of networks' limits and rates, as guard.json records them
    ({"limits", "choice", "rates"}); `characters` None: without the "learned by all" column."""
    choice, rates, limits = chosen["choice"], chosen["rates"], chosen["limits"]
    digits = rates["digits"]
    unseen = (  # "-": fitted on every character, none held out
        f"{rates['pen_characters_unseen']['not_a_digit']:.2f}"
        if "pen_characters_unseen" in rates
        else "-"
    )
    learned = (
        []
        if characters is None
        else [f"{mean_over(choice, characters):.2f}, {mean_over(rates, characters):.2f}"]
    )
    return [
        f"{limits['score']} (weight {limits['weight']})",
        f"{guard_fit.chosen_mean(choice):.2f}",
        f"{rates['pen_characters']['not_a_digit']:.2f}",
        unseen,
        *learned,
        f"{rates['doodles']['not_a_digit']:.2f}",
        f"{digits['pen']['misread_flagged']:.2f}",
        ", ".join(f"{digits[name]['read_right_flagged']:.2f}" for name in DIGITS),
    ]


def row(folder: Path, record: dict, networks: str, characters: set[str]) -> str:
    arch = record["architecture"]
    width = f"{arch['members']} x {'/'.join(map(str, arch['channels']))}, {arch['hidden']}"
    first = [str(folder), width, f"{record['epochs']}, {record['seed']}"]
    return "| " + " | ".join(first + cells(record["networks"][networks], characters)) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="guard folders (guard.json inside)")
    parser.add_argument("--networks", default="ours", help="the set whose limits and rates")
    args = parser.parse_args()
    print("\n".join(header("guard", "readers x width", "epochs, seed")))
    records = [json.loads((f / "guard.json").read_text()) for f in args.folders]
    characters = learned_by_all([r["networks"][args.networks] for r in records])
    for folder, record in zip(args.folders, records):
        print(row(folder, record, args.networks, characters))


if __name__ == "__main__":
    main()
