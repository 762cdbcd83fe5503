"""How numbers and tables are written in reports, cards and the app: one place, so the same
quantity reads the same everywhere (and the regeneration tests pin every byte of it)."""

from __future__ import annotations


def fmt(
    mean: float | None,
    std: float | None = None,
    n: int | None = None,
    digits: int = 2,
    signed: bool = False,
) -> str:
    """'98.12 ± 0.40' (mean ± sample std, in points), '+0.50 ± 1.20' for a difference, ' (n=10)'
    appended where the number of rounds is given; '-' where there is no mean."""
    if mean is None:
        return "-"
    form = f"{'+' if signed else ''}.{digits}f"
    s = format(mean, form) + ("" if std is None else f" ± {std:.{digits}f}")
    return s + ("" if n is None else f" (n={n})")


def pct(value: float | None) -> str:
    """One run's accuracy (1000 test pairs: 0.1-point steps), '-' where not measured."""
    return "-" if value is None else f"{value:.1f}"


def pct_or_none(value: float | None) -> str:
    """'98.5 %', or 'none' where the run has no such number (no validation pairs)."""
    return "none" if value is None else f"{pct(value)} %"


def as_printed(pair) -> str:
    """A published [mean, std] exactly as its source printed it: '86.4 ± 1.2'; '-' where it gave
    none."""
    return f"{pair[0]} ± {pair[1]}" if pair else "-"


def md_table(header: list[str], rows) -> list[str]:
    """A markdown table's lines: the header, its rule, a line per row of cells."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]
