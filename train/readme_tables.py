"""The documents' generated tables, each between its markers in the file that holds it (`blocks`):

- README.md: the short results table (the 2020 report as printed, its networks reproduced, ours,
  served), test pair accuracy from the reports' summary.csv;
- train/results/README.md: the full results table, every setting the study index cites;
- docs/other-writers.md: the exported networks on other writers' digits
(benchmarks/other_writers.json).

`python train/readme_tables.py` rewrites them; a test checks that the committed files are what this
writes (tests/test_study.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from digitpair.core.fmt import as_printed, fmt, md_table
from digitpair.core.models import VARIANTS
from digitpair.lab.records import SUMMARY, Summary, read_summary
from digitpair.lab.report import replace_block
from digitpair.lab.study import RESULTS, RUNS, Study

README, STUDY_INDEX, OTHER_WRITERS_DOC = (
    Path("README.md"),
    RESULTS / "README.md",
    Path("docs/other-writers.md"),
)
# (column, study folder, setting): each a cell of test pair accuracy, mean ± std over the setting's
# rounds; the folder is the study's place under train/runs and train/results. A column with no
# folder is the 2020 report's Fig. 1 as printed (seed2020's reference).
AS_PRINTED = ("2020 report (as printed)", None, None)
README_COLUMNS = (
    ("ours (`best`)", "best", "recipe"),
    ("ours, style augmentation, 200 epochs (`best`)", "best", "writers200"),
    ("ours, ensembles of 5 (`best`)", "best", "ensemble5"),
    (
        "ours, ensembles of 5, style augmentation, 200 epochs (`best`)",
        "best",
        "writers200_ensemble5",
    ),
    (
        "ours, served: ensembles of 5, writing conventions, 200 epochs (`best`)",
        "best",
        "conventions200_ensemble5",
    ),
    ("ours, the report's FC head (`best`)", "best", "recipe_fc"),
    ("ours, the previous recipe (`best-v1`)", "evidence/best-v1", "adam_safe"),
    ("the report's networks, its protocol (`seed2020`)", "seed2020", "adam_none"),
    ("ours, the report's protocol (`seed2020`)", "seed2020", "adam_none_order"),
    AS_PRINTED,
)
BEGIN, END = "<!-- results:begin (python train/readme_tables.py) -->", "<!-- results:end -->"
# The README's short table: the report as printed, its networks reproduced, ours, served.
SHORT_COLUMNS = (
    ("the 2020 report, as printed", None, None),
    ("the report's networks, reproduced (`seed2020`)", "seed2020", "adam_none"),
    ("ours, one network (`best`)", "best", "recipe"),
    ("ours, ensembles of 5 (`best`)", "best", "writers200_ensemble5"),
    (
        "ours, served: the same with writing conventions (`best`)",
        "best",
        "conventions200_ensemble5",
    ),
)
SHORT_BEGIN, SHORT_END = (
    "<!-- results-short:begin (python train/readme_tables.py) -->",
    "<!-- results-short:end -->",
)


def _setting_rows(results: Path, name: str, setting: str) -> dict[str, Summary]:
    return {r.variant: r for r in read_summary(results / name / SUMMARY) if r.setting == setting}


def readme_results(results: Path = RESULTS, columns=README_COLUMNS) -> str:
    """A results table of these columns, from the reports' summary.csv files and seed2020's
    reference."""
    reference = Study.load("train/studies/seed2020.toml")
    header = [c for c, _, _ in columns]
    table = []
    sources = [
        None
        if name is None
        else (_setting_rows(results, name, setting), Study.load(RUNS / name / "study.toml").rounds)
        for _, name, setting in columns
    ]
    for variant in VARIANTS:
        cells = [f"`{variant}`"]
        for source in sources:
            if source is None:
                cells.append(as_printed(reference.reference[reference.main][variant]))
                continue
            rows, rounds = source
            r = rows.get(variant)
            n = "" if r is None or r.rounds == rounds else f" (n={r.rounds} of {rounds})"
            cells.append(fmt(r.test_acc_mean, r.test_acc_std) + n if r else "-")
        table.append(cells)
    return "\n".join(md_table(["variant", *header], table))


OTHER_WRITERS = Path("benchmarks/other_writers.json")
OTHER_BEGIN, OTHER_END = (
    "<!-- other-writers:begin (python train/readme_tables.py) -->",
    "<!-- other-writers:end -->",
)


def readme_other_writers(path: Path = OTHER_WRITERS) -> str:
    """The README's table of the exported networks on other writers' digits (validation, used for
    choices), from benchmarks/other_writers.py's output, beside each exported run's MNIST test
    pairs: digits / pairs (%) of each set at the page's pen, the pen digits' worst digit, and their
    digits drawn with a thinner and a thicker pen."""
    report = json.loads(path.read_text())
    labels = {"ours": "ours", "report": "the report's head"}
    main_sets = [name for name in report["sets"] if not name.startswith("pen") or name == "pen"]
    pens = [name for name in report["sets"] if name.startswith("pen") and name != "pen"]
    header = (
        ["networks", "variant", "MNIST test pairs"]
        + [f"{name.upper() if name != 'pen' else 'pen'}: digits / pairs" for name in main_sets]
        + ["pen: worst digit"]
        + ([f"pen {' / '.join(p[3:] for p in pens)} px: digits"] if pens else [])
    )
    table = []
    for networks, rows in report["networks"].items():
        for variant in (v for v in VARIANTS if v in rows):
            r = rows[variant]
            cells = [labels[networks], f"`{variant}`", f"{r['mnist_test_acc']:.1f}"]

            def digits(got):
                return "-" if got["digit_acc"] is None else f"{got['digit_acc']:.1f}"

            cells += [f"{digits(r[name])} / {r[name]['pair_acc']:.1f}" for name in main_sets]
            per_digit = r["pen"]["per_digit"]
            low = None if per_digit is None else min(range(10), key=lambda d: per_digit[d])
            cells.append("-" if low is None else f"{low}: {per_digit[low]:.1f}")
            if pens:
                cells.append(" / ".join(digits(r[name]) for name in pens))
            table.append(cells)
    return "\n".join(md_table(header, table))


def blocks(
    results: Path = RESULTS, other_writers: Path = OTHER_WRITERS
) -> list[tuple[Path, str, str, str]]:
    """Every generated block: (the file that holds it, its begin and end markers, its content)."""
    return [
        (README, SHORT_BEGIN, SHORT_END, readme_results(results, SHORT_COLUMNS)),
        (STUDY_INDEX, BEGIN, END, readme_results(results)),
        (OTHER_WRITERS_DOC, OTHER_BEGIN, OTHER_END, readme_other_writers(other_writers)),
    ]


def update_docs(results: Path = RESULTS, other_writers: Path = OTHER_WRITERS) -> list[Path]:
    """Rewrite every block between its markers; the files that changed."""
    changed = []
    for path, begin, end, body in blocks(results, other_writers):
        text = path.read_text()
        new = replace_block(text, begin, end, body)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":
    changed = update_docs()
    print("updated " + ", ".join(map(str, changed)) if changed else "unchanged")
