from digitpair.core.fmt import as_printed, fmt, md_table, pct, pct_or_none


def test_numbers_read_the_same_everywhere():
    assert fmt(None, 1.0, 3) == "-"  # nothing measured: no std, no n
    assert fmt(98.123, 0.4) == "98.12 ± 0.40" and fmt(98.123) == "98.12"
    assert fmt(98.123, 0.4, 15) == "98.12 ± 0.40 (n=15)"
    assert (
        fmt(0.5, 1.25, signed=True) == "+0.50 ± 1.25" and fmt(-1.875, None, signed=True) == "-1.88"
    )
    assert fmt(97.84, 0.551, digits=1) == "97.8 ± 0.6"
    assert (
        pct(None) == "-"
        and pct(96.0) == "96.0"
        and pct_or_none(None) == "none"
        and pct_or_none(92.04) == "92.0 %"
    )
    assert (
        as_printed([86.4, 1.2]) == "86.4 ± 1.2" and as_printed(["86.40", "0.08"]) == "86.40 ± 0.08"
    )
    assert as_printed(None) == "-"


def test_md_table_is_header_rule_and_one_line_a_row():
    assert md_table(["a", "b"], [["1", "2"], ["3", "4"]]) == [
        "| a | b |",
        "| --- | --- |",
        "| 1 | 2 |",
        "| 3 | 4 |",
    ]
    assert md_table(["only"], []) == ["| only |", "| --- |"]
