"""The page's About panel: what the networks are, their test accuracies as the served weights
record them (each variant's config.json), what the guard is and its measured rates (the served
guard's guard.json), and links to the study's reports and the code."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import guard
from ..core.checkout import ROOT, source_url
from ..core.config import UNKNOWN
from ..core.fmt import fmt, md_table
from ..core.models import VARIANTS
from ..core.weights import StudySummary, VariantConfig
from .served import CHOICES, MODEL_REPO_ENV, NetworkSet

# The reports the text below names: the study the weights come from and the 2020 report's protocol.
NAMED_REPORTS = ("best", "seed2020")

# What the panel says first: the networks and what the study found.
ABOUT = [
    "Five small convolutional networks compare the two digits. `simple_cnn` only learns to "
    "read digits and compares its two readings; the other four learn from the ≤ answers, "
    "with one encoder shared by both digits (`shared`) or one each (`unshared`), and the "
    "`_aux` ones are also told which digits they see. Each was trained on 1000 MNIST pairs "
    "of 14x14 digits, many times over with fresh data and initialisation.",
    "",
    "What the study found: being told the digits matters most (the `_aux` networks and "
    "`simple_cnn` lead); without digit labels, one shared encoder beats two separate ones.",
    "",
    "The choice above the cards switches between two sets of these five networks, both "
    "trained with our recipe: ours, whose pair networks compare their two 10-way outputs "
    "with the order head (P(a ≤ b) = sum over i ≤ j of p_a(i) p_b(j)), and the 2020 "
    "report's, which compare them with one fully connected layer, Linear(20, 2); their "
    "accuracies are side by side in `train/results/best/report.md`'s `head` table, and the "
    "report's networks under its own protocol in `train/results/seed2020`. Where a card's "
    '"how it works" says "5 networks trained alike, averaged", that variant answers as '
    "an ensemble: five networks trained on the same pairs from different initialisations, "
    "their digit distributions averaged (for `shared` and `unshared`, their P).",
]


def about_markdown(sets: dict[str, NetworkSet], root: Path = ROOT, link=None) -> str:
    """The About panel for the served `sets`: the text above, each set's accuracies as its
    config.json files record them, the guard and its rates (its guard.json, if any) and links.

    `link(path)` turns a file of the checkout `root` into a URL; by default a Hugging Face Space
    links its own files ($SPACE_ID), and elsewhere files are named, not linked.
    """
    space = os.environ.get("SPACE_ID")
    if link is None and space:

        def link(p):
            path = p.relative_to(root).as_posix()
            return f"https://huggingface.co/spaces/{space}/blob/main/{path}"

    lines = [*ABOUT, *results(sets), *guard_note(guard_record(sets))]
    links = about_links(sets, root, link, space)
    lines += [
        "",
        "More: "
        + (", ".join(links) if links else "the study's reports are not in this copy")
        + ".",
    ]
    return "\n".join(lines)


def results(sets: dict[str, NetworkSet]) -> list[str]:
    """Each set's table: per variant, how many networks answer and its setting's test accuracies
    over the rounds its config.json records; 'unknown' for what a config does not record."""
    lines = [
        "",
        "Test accuracy (%) on pairs and, for the networks told the digits, on single "
        "digits, as each network's `config.json` records it: mean ± std over the rounds "
        "of the setting it was exported from (no ± after one round).",
    ]
    for networks, served in sets.items():
        name = CHOICES.get(networks, networks)
        configs = {n: served.configs.get(n) for n in VARIANTS if n in served.models}
        if not configs:
            lines += ["", f"{name}: none loaded."]
            continue
        lines += ["", f"{name}, {recorded_settings(configs)}:", ""]
        lines += md_table(
            ["network", "networks averaged", "pair accuracy", "digit accuracy", "rounds"],
            [row(n, c) for n, c in configs.items()],
        )
    return lines


def row(name: str, config: VariantConfig | None) -> list[str]:
    """One variant's cells: its code name, members, pair and digit accuracy, rounds."""
    summary = config.study_summary if config else None
    digits = accuracy(summary, "test_digit_acc") if VARIANTS[name].digit_loss else "-"
    rounds = UNKNOWN if summary is None else str(summary.rounds)
    return [
        f"`{name}`",
        UNKNOWN if config is None else str(config.members),
        accuracy(summary, "test_acc"),
        digits,
        rounds,
    ]


def accuracy(summary: StudySummary | None, key: str) -> str:
    """'98.0 ± 0.4' from a study summary's <key>_mean and <key>_std, '98.0' where it records no
    std (one round); 'unknown' where it records no mean."""
    mean = None if summary is None else getattr(summary, f"{key}_mean")
    if mean is None:
        return UNKNOWN
    return fmt(mean, getattr(summary, f"{key}_std"), digits=1)


def recorded_settings(configs: dict[str, VariantConfig | None]) -> str:
    """Which study and setting the numbers are from, as the configs record them: 'from study
    `best`, setting `x`', or each with its variants where they differ."""

    def said(config):
        study = f"`{config.study}`" if config and config.study else UNKNOWN
        setting = f"`{config.setting}`" if config and config.setting else UNKNOWN
        return f"study {study}, setting {setting}"

    groups: dict[str, list[str]] = {}
    for name, config in configs.items():
        groups.setdefault(said(config), []).append(name)
    if len(groups) == 1:
        return f"from {next(iter(groups))}"
    return "from " + "; ".join(
        f"{where} ({', '.join(f'`{n}`' for n in names)})" for where, names in groups.items()
    )


def report_files(sets: dict[str, NetworkSet], root: Path = ROOT) -> list[Path]:
    """The study reports the panel links to, where this checkout has them: those of the studies
    the served weights record, and those the text names."""
    recorded = [
        c.study
        for served in sets.values()
        for c in served.configs.values()
        if c.study and re.fullmatch(r"\w[\w-]*", c.study)
    ]
    studies = dict.fromkeys([*recorded, *NAMED_REPORTS])
    return [
        p
        for p in (root / "train" / "results" / study / "report.md" for study in studies)
        if p.is_file()
    ]


def guard_record(sets: dict[str, NetworkSet]) -> dict | None:
    """The served guard's record (guard.json), from the first set that has one."""
    return next(
        (served.judge.guard.record for served in sets.values() if served.judge is not None), None
    )


def guard_note(record: dict | None) -> list[str]:
    """What the guard is, and its rates as its record states them (nothing where it states none)."""
    try:
        rates = guard.rates_markdown(record or {})
    except (KeyError, TypeError, AttributeError):  # a record whose rates this code can't read
        rates = ""
    if not rates:
        return []
    target = record.get("fitted_on", {}).get("budget", {}).get("target", "?")
    return [
        "",
        "When the page says a drawing is 'not a digit' or 'unsure, 1 or 7': the networks "
        "give every drawing some digit, often with a high probability, so a small network of "
        "its own, the guard, judges each drawing. It reads digits and has an eleventh answer, "
        "'not a digit', learned from pen-drawn letters and symbols and from drawn dots, blobs, "
        "scribbles, shapes, doodles and crossed-out digits; where its answers lean far enough "
        "from every digit (past a limit), the page says 'not a digit', and where it doubts the "
        "digit the networks read (or reads another), 'unsure', naming both. The limits are "
        f"chosen so that at most {target} % of the real digits the networks read right are "
        "flagged (a margin under the goal's 1 %), on writers and kinds of drawing the guard "
        "did not learn from (`digitpair-train fit-guard`, `digitpair/guard/__init__.py`); "
        "measured on others still:",
        "",
        rates,
    ]


def about_links(sets: dict[str, NetworkSet], root: Path, link, space: str | None) -> list[str]:
    """The reports (linked where `link` makes URLs, else named), the weights on the Hub where they
    come from there, and the source code."""
    links = [
        f"[{p.relative_to(root).as_posix()}]({link(p)})"
        if link
        else f"`{p.relative_to(root).as_posix()}`"
        for p in report_files(sets, root)
    ]
    repo = os.environ.get(MODEL_REPO_ENV)
    if repo:
        links.append(f"[the weights on the Hub](https://huggingface.co/{repo})")
    source = source_url(root)
    if source:
        links.append(f"[the source code]({source})")
    elif space:
        links.append(f"[the source code](https://huggingface.co/spaces/{space}/tree/main)")
    return links
