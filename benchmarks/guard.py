"""Measure the guard in weights/guard/ (digitpair/guard/__init__.py) on held-out data; print its
rates.

The guard is fitted by `digitpair-train fit-guard` (digitpair/guard/fit.py), which records these
rates in weights/guard/guard.json; this script measures them again, with the recorded limits, on
the drawings of digitpair/guard/data.py (drawn once into its cache), and says whether they match
the record. Every figure is validation: the pen writers and the kinds of drawing measured are
ones the guard was neither fitted nor chosen on, MNIST's test digits are only measured, USPS and
UCI never seen.

    python benchmarks/guard.py [--weights weights] [--guard FOLDER [--uci-half]] [--readme]

--readme rewrites the guard blocks of the README and docs/guard.md from the record. --guard
measures a fit's folder (`fit-guard --out`) instead of the served guard; --uci-half measures UCI
only on the half a `fit-guard --uci` fit is measured on, to set a guard that did not learn from
UCI beside one that did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: this checkout's digitpair

import torch  # noqa: E402

from digitpair import guard  # noqa: E402
from digitpair.guard import Limits  # noqa: E402
from digitpair.guard import data as guard_data  # noqa: E402
from digitpair.guard import fit as guard_fit  # noqa: E402
from digitpair.lab.report import replace_block  # noqa: E402

README, DOCS = ROOT / "README.md", ROOT / "docs" / "guard.md"
BEGIN, END = "<!-- guard:begin (python benchmarks/guard.py --readme) -->", "<!-- guard:end -->"


def table(rates: dict) -> list[str]:
    """The rates of one set of networks, a line each."""
    lines = [
        f"  {name:<10} read right flagged {r['read_right_flagged']:>5} %, all flagged "
        f"{r['flagged']:>5} % (not a digit {r['not_a_digit']} %, unsure {r['unsure']} %), "
        f"misread {r['misread']} %, of those flagged {r['misread_flagged']} %  "
        f"[{r['judged']} judged]"
        for name, r in rates["digits"].items()
    ]
    for name in ("pen_characters", "pen_characters_unseen"):
        if name not in rates:  # fitted on every character: none held out
            continue
        r = rates[name]
        least = sorted(r.get("per_label", {}).items(), key=lambda kv: kv[1])[:8]
        lines.append(
            f"  {name:<22} not a digit {r['not_a_digit']} % [{r['judged']} judged]; "
            "least: " + ", ".join(f"{c} {v} %" for c, v in least)
        )
    lines.append(
        f"  doodles of unseen kinds: not a digit {rates['doodles']['not_a_digit']} %: "
        + ", ".join(f"{k} {v} %" for k, v in rates["doodles"]["per_kind"].items())
    )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument(
        "--readme",
        action="store_true",
        help="rewrite the guard blocks of the README and docs/guard.md from the record",
    )
    p.add_argument("--guard", type=Path, help="a fit's folder [default: WEIGHTS/guard]")
    p.add_argument(
        "--uci-half", action="store_true", help="measure UCI on the half a --uci fit is measured on"
    )
    args = p.parse_args()
    if args.readme and (args.guard or args.uci_half):
        p.error("--readme writes the served guard's rates as recorded: no --guard, no --uci-half")
    torch.set_num_threads(1)

    fitted = guard.load(args.guard or args.weights / guard.FOLDER)
    limits = {
        networks: Limits(**chosen["limits"])
        for networks, chosen in fitted.record["networks"].items()
    }
    splits = guard_fit.splits_of(fitted.record)
    if args.uci_half and "uci" not in splits["halves"]:
        splits["halves"] += ("uci",)
    measured = guard_fit.measure(fitted.net, args.weights, guard_data.load, limits, **splits)
    for networks, m in measured.items():
        recorded = fitted.record["networks"][networks]
        print(f"{networks} networks, limits {json.dumps(recorded['limits'])}")
        print("\n".join(table(m["rates"])))
        same = m["rates"] == recorded["rates"] and m["fingerprints"] == recorded["fingerprints"]
        print(f"  {'the same as' if same else 'NOT the same as'} the rates guard.json records")
    print(guard.rates_markdown(fitted.record))
    if args.readme:
        blocks = {README: guard.rates_markdown, DOCS: guard.docs_markdown}
        for page, markdown in blocks.items():
            page.write_text(replace_block(page.read_text(), BEGIN, END, markdown(fitted.record)))
            print(f"wrote {page.relative_to(ROOT)}'s guard block")


if __name__ == "__main__":
    main()
