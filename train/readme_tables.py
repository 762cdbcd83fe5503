"""The README's generated tables: its results table (test pair accuracy of the studies' settings it
cites, from their reports' summary.csv) and its other-writers table (benchmarks/other_writers.json).

`python train/readme_tables.py` rewrites them between their markers in README.md; a test checks
that the committed README is what this writes (tests/test_study.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from digitpair.fmt import as_printed, fmt, md_table
from digitpair.models import VARIANTS
from digitpair.records import SUMMARY, Summary, read_summary
from digitpair.report import replace_block
from digitpair.study import RESULTS, RUNS, Study

README = Path("README.md")
# (column, study folder, setting): each a cell of test pair accuracy, mean ± std over the setting's
# rounds; the folder is the study's place under train/runs and train/results.
README_COLUMNS = (("ours (`best`)", "best", "recipe"),
                  ("ours, style augmentation, 200 epochs (`best`)", "best", "writers200"),
                  ("ours, ensembles of 5 (`best`)", "best", "ensemble5"),
                  ("ours, served: ensembles of 5, style augmentation, 200 epochs (`best`)", "best", "writers200_ensemble5"),
                  ("ours, the report's FC head (`best`)", "best", "recipe_fc"),
                  ("ours, the previous recipe (`best-v1`)", "evidence/best-v1", "adam_safe"),
                  ("the report's networks, its protocol (`seed2020`)", "seed2020", "adam_none"),
                  ("ours, the report's protocol (`seed2020`)", "seed2020", "adam_none_order"))
BEGIN, END = "<!-- results:begin (python train/readme_tables.py) -->", "<!-- results:end -->"


def _setting_rows(results: Path, name: str, setting: str) -> dict[str, Summary]:
    return {r.variant: r for r in read_summary(results / name / SUMMARY) if r.setting == setting}


def readme_results(results: Path = RESULTS) -> str:
    """The README's results table, from the reports' summary.csv files and seed2020's reference."""
    reference = Study.load("train/studies/seed2020.toml")
    header = [c for c, _, _ in README_COLUMNS] + ["2020 report (as printed)"]
    table = []
    columns = [(_setting_rows(results, name, setting), Study.load(RUNS / name / "study.toml").rounds)
               for _, name, setting in README_COLUMNS]
    for variant in VARIANTS:
        cells = [f"`{variant}`"]
        for rows, rounds in columns:
            r = rows.get(variant)
            n = "" if r is None or r.rounds == rounds else f" (n={r.rounds} of {rounds})"
            cells.append(fmt(r.test_acc_mean, r.test_acc_std) + n if r else "-")
        cells.append(as_printed(reference.reference[reference.main][variant]))
        table.append(cells)
    return "\n".join(md_table(["variant", *header], table))


OTHER_WRITERS = Path("benchmarks/other_writers.json")
OTHER_BEGIN, OTHER_END = "<!-- other-writers:begin (python train/readme_tables.py) -->", "<!-- other-writers:end -->"


def readme_other_writers(path: Path = OTHER_WRITERS) -> str:
    """The README's table of the exported networks on other writers' digits (validation, used for
    choices), from benchmarks/other_writers.py's output, beside each exported run's MNIST test pairs."""
    report = json.loads(path.read_text())
    labels = {"ours": "ours", "report": "the report's head"}
    header = ["networks", "variant", "MNIST test pairs"] + [
        f"{name.upper()}: {what}" for name in report["sets"] for what in ("digits", "pairs", "worst digit")]
    table = []
    for networks, rows in report["networks"].items():
        for variant in (v for v in VARIANTS if v in rows):
            r = rows[variant]
            cells = [labels[networks], f"`{variant}`", f"{r['mnist_test_acc']:.1f}"]
            for name in report["sets"]:
                got = r[name]
                if got["digit_acc"] is None:
                    cells += ["-", f"{got['pair_acc']:.1f}", "-"]
                    continue
                low = min(range(10), key=lambda d: got["per_digit"][d])
                cells += [f"{got['digit_acc']:.1f}", f"{got['pair_acc']:.1f}", f"{low}: {got['per_digit'][low]:.1f}"]
            table.append(cells)
    return "\n".join(md_table(header, table))


def update_readme(readme: Path = README, results: Path = RESULTS, other_writers: Path = OTHER_WRITERS) -> bool:
    """Rewrite the blocks between the results and other-writers markers; True if the README changed."""
    text = readme.read_text()
    new = replace_block(text, BEGIN, END, readme_results(results))
    new = replace_block(new, OTHER_BEGIN, OTHER_END, readme_other_writers(other_writers))
    readme.write_text(new)
    return new != text


if __name__ == "__main__":
    print("README.md " + ("updated" if update_readme() else "unchanged"))
