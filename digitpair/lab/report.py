"""Tables and figures of a study, computed from its run records (never typed by hand).

`write_report(runs_dir, results_dir, study)` writes summary.csv, meta.json, report.md and one
PNG per comparison. Every table and figure states n (rounds per cell), and the commits and
machines as the records hold them. Nothing in them depends on when or where the report is
generated: unchanged records give unchanged bytes.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from datetime import timedelta
from pathlib import Path

from ..core.augment import PER_DIGIT
from ..core.conventions import CLASS
from ..core.data import SYNTHETIC
from ..core.fmt import as_printed, fmt, md_table
from ..core.models import VARIANTS
from . import records as rec
from .records import UNKNOWN, RunRecord, Summary
from .study import Study


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); None where undefined."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


HEADS_NOTE = (
    " (`order`: P(a <= b) = sum over i <= j of p_a(i) p_b(j), no parameters; `fc`: the 2020 "
    "report's one fully connected layer, Linear(20, 2), on the two concatenated 10-way outputs; "
    "`simple_cnn` has no pair head and compares its two digit predictions in code in every setting)"
)


def aggregate(records: list[RunRecord], study: Study) -> list[Summary]:
    """One row per (setting, variant) in the study's order, with mean/std over rounds."""
    rows = []
    for setting in study.settings:
        for variant in (m for m in VARIANTS if m in study.variants):
            runs = rec.select(records, setting=setting, variant=variant)
            if not runs:
                continue
            cfg, metrics = runs[0].config, [r.metrics for r in runs]
            stats = {}
            for key in ("test_acc", "test_digit_acc", "val_acc"):
                stats[f"{key}_mean"], stats[f"{key}_std"] = mean_std(
                    [getattr(m, key) for m in metrics]
                )
            rows.append(
                Summary(
                    setting=setting,
                    variant=variant,
                    optimizer=cfg.optimizer,
                    augmentation=cfg.augmentation,
                    lr=cfg.lr,
                    epochs=cfg.epochs,
                    encoder=cfg.encoder,
                    head=cfg.head,
                    precision=cfg.precision,
                    members=cfg.members,
                    rounds=len(runs),
                    parameters=metrics[0].parameters,
                    train_seconds_mean=statistics.fmean(m.wall_seconds for m in metrics),
                    **stats,
                )
            )
    return rows


# Said after the commits where some runs recorded none.
UNRECORDED = " (unknown: trained before runs recorded their provenance)"


def describe_machine(m: dict | str) -> str:
    if m == UNKNOWN:
        return UNKNOWN
    gpu = f"{m['gpu']}, " if m["gpu"] else ""
    return f"{gpu}{m['cpu']} ({m['cpu_count']} cores), torch {m['torch']}"


def _metric(records: list[RunRecord]) -> tuple[str, str]:
    if any(r.metrics.test_acc is not None for r in records):
        return "test_acc", "test pair accuracy (%)"
    return "val_acc", "validation pair accuracy (%)"


def plot_comparison(
    records: list[RunRecord], study: Study, settings: list[str], title: str, path: Path, footer: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = _metric(records)
    variants = [m for m in VARIANTS if m in study.variants]
    fig, ax = plt.subplots(
        figsize=(max(6, 1.6 * len(variants) * max(1, len(settings)) ** 0.5), 4.5)
    )
    width = 0.8 / len(settings)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ns = []
    for k, setting in enumerate(settings):
        data = [
            [getattr(r.metrics, key) for r in rec.select(records, setting, m)] for m in variants
        ]
        ns += [len(d) for d in data if d]
        pos = [i + (k - (len(settings) - 1) / 2) * width for i in range(len(variants))]
        keep = [(p, d) for p, d in zip(pos, data) if d]
        if not keep:
            continue
        bp = ax.boxplot(
            [d for _, d in keep],
            positions=[p for p, _ in keep],
            widths=width * 0.85,
            patch_artist=True,
            showmeans=True,
            meanprops={"marker": "D", "markersize": 4},
        )
        for box in bp["boxes"]:
            box.set_facecolor(colors[k % len(colors)])
            box.set_alpha(0.6)
        ax.plot([], [], "s", color=colors[k % len(colors)], alpha=0.6, label=setting)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel(label)
    ax.set_xlabel("variant")
    n_text = (
        f"n = {min(ns)} rounds per box"
        if ns and min(ns) == max(ns)
        else f"n = {min(ns, default=0)}-{max(ns, default=0)} rounds per box"
    )
    ax.set_title(f"{title}\n{n_text}", fontsize=11)
    if len(settings) > 1:
        ax.legend(title="setting", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.text(0.01, 0.01, footer, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    # No "Software" entry: the bytes depend on the records, not on the matplotlib that drew them.
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def write_report(runs_dir: str | Path, results_dir: str | Path, study: Study) -> list[Path]:
    """Pack the study folder's finished runs (what the repository keeps, see records.pack), then
    write the report from them. `digitpair-train study` ends with this, and so does `report`."""
    runs_dir, results_dir = Path(runs_dir), Path(results_dir)
    rec.pack(runs_dir)
    records = rec.load(runs_dir)
    with rec.writing(results_dir):  # a read-only or full folder: a WriteError naming it
        return _write_report(runs_dir, results_dir, study, records)


def _write_report(
    runs_dir: Path, results_dir: Path, study: Study, records: list[RunRecord]
) -> list[Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    rows = aggregate(records, study)
    written = []

    rec.write_summary(results_dir / rec.SUMMARY, rows)
    written.append(results_dir / rec.SUMMARY)

    invocations = rec.read_invocations(runs_dir)
    meta = meta_json(invocations, study, records)
    (results_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    written.append(results_dir / "meta.json")

    footer = (
        f"digitpair {', '.join(meta['commits'])} | "
        f"{' + '.join(map(describe_machine, meta['machines']))} "
        f"| study {study.name}"
    )
    figures = {}
    for comparison, settings in study.comparisons.items():
        settings = [s for s in settings if rec.select(records, setting=s)]
        if not settings:
            continue
        path = results_dir / f"fig_{comparison}.png"
        plot_comparison(records, study, settings, f"{study.name}: {comparison}", path, footer)
        figures[comparison] = (path, settings)
        written.append(path)

    text = render_markdown(study, rows, records, invocations, meta, figures)
    (results_dir / "report.md").write_text(text)
    written.append(results_dir / "report.md")
    return written


def meta_json(invocations: list[dict], study: Study, records: list[RunRecord]) -> dict:
    """Where and at which commit the runs trained, as the records state it ("unknown" where they
    don't), and what the study commands recorded (`invocations`, from invocations.jsonl;
    `account`)."""
    p = [r.provenance for r in records]
    return {
        "study": study.name,
        "final": study.final,
        "runs": len(records),
        "rounds": study.rounds,
        "compute_seconds": sum(r.metrics.wall_seconds for r in records),
        "commits": sorted({c.commit + ("-dirty" if c.dirty is True else "") for c in p}),
        "machines": _unique(c.machine for c in p),
        "devices": sorted({c.device for c in p}),
        "torch": sorted({c.torch for c in p}),
        "invocations": len(invocations),
        "wall_seconds": sum(i["wall_seconds"] for i in invocations if i["ended"]),
        "workers": sorted({i["workers"] for i in invocations if "workers" in i}),
        "invocation_commits": sorted({i.get("commit", UNKNOWN) for i in invocations}),
        "invocation_machines": _unique(i.get("machine", UNKNOWN) for i in invocations),
        **account(records, invocations),
    }


def account(records: list[RunRecord], invocations: list[dict]) -> dict:
    """What the invocation log says of the runs. A run names the invocation that recorded it; the
    lines written before runs did count their runs (`completed`) without naming them. So:

    - invocations_without_end: invocations with a start line and no end line (killed, or running);
      `without_end_seconds_at_least`: their time from their start to the last run each recorded
      (their wall time itself was never recorded, so it is not in `wall_seconds`);
    - runs_without_invocation: runs that no line names or counts, whose time no wall time holds;
    - runs_outside_invocations: the runs whose recorded start and finish lie outside every
      recorded invocation's time span (older lines: their end minus their wall time), by name."""
    ids = {i["invocation"] for i in invocations if "invocation" in i}
    unnamed = [r for r in records if r.provenance.invocation not in ids]
    counted = sum(i["completed"] for i in invocations if "invocation" not in i)
    second = timedelta(seconds=1)  # recorded times are whole seconds
    spans = []
    for i in invocations:
        end = rec.timestamp(i["finished_at"]) + second if i["ended"] else None
        start = (
            rec.timestamp(i["started_at"])
            if "started_at" in i
            else rec.timestamp(i["finished_at"]) - timedelta(seconds=i["wall_seconds"])
        ) - second
        spans.append((start, end))
    outside = [
        r.name
        for r in unnamed
        if UNKNOWN not in (r.provenance.started_at, r.provenance.finished_at)
        and not any(
            start <= rec.timestamp(r.provenance.started_at)
            and (end is None or rec.timestamp(r.provenance.finished_at) <= end)
            for start, end in spans
        )
    ]
    at_least = 0.0
    for i in (i for i in invocations if not i["ended"]):
        finished = [
            rec.timestamp(r.provenance.finished_at)
            for r in records
            if r.provenance.invocation == i["invocation"]
        ]
        if finished:
            at_least += (max(finished) - rec.timestamp(i["started_at"])).total_seconds()
    return {
        "invocations_without_end": sum(not i["ended"] for i in invocations),
        "without_end_seconds_at_least": at_least,
        "runs_without_invocation": max(0, len(unnamed) - counted),
        "runs_outside_invocations": outside,
    }


def _unique(values) -> list:
    return list({json.dumps(v, sort_keys=True): v for v in values}.values())


def data_use(study: Study) -> str:
    """Which decisions rest on which pairs, from the study's definition."""
    selections = {c.selection for c in study.settings.values()}
    chosen = (
        "the epoch of each run was selected on its validation pairs"
        if selections == {"best_val"}
        else "each run is reported at its last epoch (no selection, as the 2020 report did)"
        if selections == {"last"}
        else "the epoch was selected on validation pairs (selection = best_val) or the last epoch "
        "kept"
    )
    if study.final:
        return (
            f"Data use: a final study. {chosen.capitalize()}; the test pairs were scored once per "
            "run, "
            "after that, and no choice within this study looked at them."
        )
    return (
        f"Data use: not a final study (tuning or exploratory): {chosen}, and every choice it "
        "informs rests "
        "on validation pairs only; the test pairs were never evaluated."
    )


def last_val_acc(record: RunRecord) -> float | None:
    """Validation accuracy at the last epoch: unlike the selected epoch's, not the best of many
    noisy looks, so not biased upwards (and it is what training on all pairs and keeping the last
    epoch delivers)."""
    return record.history[-1].get("val_acc") if record.history else None


def paired_rows(records: list[RunRecord], study: Study) -> list[dict]:
    """Each setting against the study's main one, variant by variant, paired round by round (same
    data seed): mean and sample std of the differences in selected and last-epoch validation
    accuracy, and the cost as the ratio of mean training seconds (same invocations, same load)."""
    rows = []
    main = study.settings[study.main].to_dict()
    for setting, cfg in study.settings.items():
        if setting == study.main:
            continue
        changes = ", ".join(
            f"{k} {v!r}"
            for k, v in cfg.to_dict().items()
            if v != main[k] and k not in ("variant", "head", "data_seed", "init_seed")
        )
        for variant in (m for m in VARIANTS if m in study.variants):
            base = {r.round: r for r in rec.select(records, study.main, variant)}
            pairs = [
                (base[r.round], r) for r in rec.select(records, setting, variant) if r.round in base
            ]
            if not pairs:
                continue
            row = {
                "setting": setting,
                "changes": changes or "nothing",
                "variant": variant,
                "rounds": len(pairs),
                "cost": statistics.fmean(r.metrics.wall_seconds for _, r in pairs)
                / statistics.fmean(b.metrics.wall_seconds for b, _ in pairs),
            }
            readers = [("val", lambda x: x.metrics.val_acc), ("last_val", last_val_acc)]
            readers += [(key, lambda x, key=key: getattr(x.metrics, key)) for key in WRITERS + PEN]
            readers += [
                (f"pen_{d}", lambda x, d=d: x.metrics.pen_per_digit and x.metrics.pen_per_digit[d])
                for d in range(10)
            ]
            for key, f in readers:
                row[f"d_{key}_mean"], row[f"d_{key}_std"] = mean_std(
                    [f(r) - f(b) for b, r in pairs if f(b) is not None and f(r) is not None]
                )
            rows.append(row)
    return rows


def render_levers(study: Study, records: list[RunRecord]) -> list[str]:
    """The lever table: every setting's validation effect against the main one, and its cost."""
    rows = paired_rows(records, study)
    if not rows:
        return []
    variants = [m for m in VARIANTS if m in study.variants]
    by = {(r["setting"], r["variant"]): r for r in rows}
    lines = [
        f"## Levers: each setting against `{study.main}`, paired round by round",
        "",
        "Difference in validation pair accuracy (points), mean ± sample std over the rounds both "
        "settings finished (n in the last column). Last epoch: the network the run ends with, an "
        "unbiased estimate (what training on all pairs and keeping the last epoch gives). "
        "Selected: "
        "the epoch chosen on the same validation pairs, the best of every epoch's look, so biased "
        "upwards, and more so for noisier runs. Cost: mean training seconds over the main "
        "setting's, "
        "same invocations.",
        "",
    ]
    table = []
    for setting, cells in lever_cells(study, variants, by):
        present = [c for c in cells if c]
        table.append(
            [f"`{setting}`", present[0]["changes"]]
            + [
                "-" if c is None else f"{_signed(c, 'last_val')} / {_signed(c, 'val')}"
                for c in cells
            ]
            + [
                f"{statistics.fmean(c['cost'] for c in present):.2f}x",
                str(min(c["rounds"] for c in present)),
            ]
        )
    lines += md_table(
        ["setting", "changes", *(f"{m}: last epoch / selected" for m in variants), "cost", "n"],
        table,
    )
    return (
        lines
        + [""]
        + render_writer_levers(study, variants, by)
        + render_pen_levers(study, variants, by)
    )


def lever_cells(study: Study, variants: list[str], by: dict):
    """(setting, [its paired row per variant, or None]) for every setting but the main one that has
    any."""
    for setting in (s for s in study.settings if s != study.main):
        cells = [by.get((setting, m)) for m in variants]
        if any(cells):
            yield setting, cells


def _signed(cell: dict, key: str) -> str:
    """A paired difference from the main setting: '+0.50 ± 1.20' from cell's d_<key>_mean and
    _std."""
    return fmt(cell[f"d_{key}_mean"], cell[f"d_{key}_std"], signed=True)


# Other writers' digits (digitpair/core/writers.py) as training.Metrics holds them.
WRITERS = ("usps_digit_acc", "uci_digit_acc", "usps_pair_acc", "uci_pair_acc")
PEN = ("pen_digit_acc", "pen_pair_acc")


def render_writer_levers(study: Study, variants: list[str], by: dict) -> list[str]:
    """The lever table's other-writers columns, where the runs read them: each setting's difference
    from the main one in digit accuracy (pair accuracy for variants without digit outputs)."""
    if all(by[k].get("d_uci_pair_acc_mean") is None for k in by):
        return []
    lines = [
        f"### Other writers' digits: each setting against `{study.main}` (validation, used for "
        "choices)",
        "",
        "Difference in points, mean ± sample std over the paired rounds, of the USPS train split / "
        "the UCI "
        "digits (digitpair/core/writers.py: drawn as on the page, read through "
        "`drawing.preprocess`): digit "
        "accuracy, or pair accuracy (marked *pairs*) for variants without digit outputs.",
        "",
    ]
    table = []
    for setting, cells in lever_cells(study, variants, by):
        texts = []
        for c in cells:
            kind = "digit" if c is not None and c["d_uci_digit_acc_mean"] is not None else "pair"
            texts.append(
                "-"
                if c is None
                else " / ".join(_signed(c, f"{s}_{kind}_acc") for s in ("usps", "uci"))
                + (" *pairs*" if kind == "pair" else "")
            )
        table.append([f"`{setting}`", *texts])
    return lines + md_table(["setting", *(f"{m}: USPS / UCI" for m in variants)], table) + [""]


def targeted(study: Study, setting: str) -> set[int]:
    """The digit classes a setting's writing conventions are drawn on (augment.PER_DIGIT)."""
    style = PER_DIGIT.get(study.settings[setting].augmentation)
    if style is None:
        return set()
    return {
        CLASS[f.name]
        for f in dataclasses.fields(style.conventions)
        if getattr(style.conventions, f.name)
    }


def render_pen_levers(study: Study, variants: list[str], by: dict) -> list[str]:
    """The pen digits' lever table, where the runs read them: per setting against the main one,
    each variant's pen digits (pairs for those without digit outputs), then digit by digit for the
    variants with digit outputs, averaged over them, the digits a setting's conventions are drawn
    on in bold; beside the MNIST validation pairs and the cost."""
    if all(by[k].get("d_pen_pair_acc_mean") is None for k in by):
        return []
    readers = [m for m in variants if VARIANTS[m].digit_loss]
    lines = [
        f"### Pen-drawn digits: each setting against `{study.main}` (validation, used for choices)",
        "",
        "Difference in points, mean ± sample std over the paired rounds, on the pen digits "
        "(digitpair/core/writers.py: 8,685 digits by the writers of 12 labs, drawn with the page's "
        "pen and "
        "read through `drawing.preprocess`): each variant's digit accuracy (pair accuracy, marked "
        "*pairs*, "
        "for variants without digit outputs); then each digit's accuracy, mean over "
        f"{', '.join(f'`{m}`' for m in readers)}, the digits the setting draws conventions on in "
        "**bold**; "
        "MNIST validation pairs at the last epoch, mean over all variants; the cost.",
        "",
    ]
    table = []
    for setting, cells in lever_cells(study, variants, by):
        texts = []
        for m, c in zip(variants, cells):
            kind = "digit" if VARIANTS[m].digit_loss else "pair"
            texts.append(
                "-"
                if c is None or c[f"d_pen_{kind}_acc_mean"] is None
                else _signed(c, f"pen_{kind}_acc") + (" *pairs*" if kind == "pair" else "")
            )
        marked = targeted(study, setting)
        digits = []
        for d in range(10):
            values = [
                by[(setting, m)][f"d_pen_{d}_mean"]
                for m in readers
                if (setting, m) in by and by[(setting, m)][f"d_pen_{d}_mean"] is not None
            ]
            text = fmt(statistics.fmean(values), None, digits=1, signed=True) if values else "-"
            digits.append(f"**{text}**" if d in marked else text)
        present = [c for c in cells if c]
        val = [c["d_last_val_mean"] for c in present if c["d_last_val_mean"] is not None]
        table.append(
            [
                f"`{setting}`",
                *texts,
                *digits,
                fmt(statistics.fmean(val), None, signed=True) if val else "-",
                f"{statistics.fmean(c['cost'] for c in present):.2f}x",
            ]
        )
    header = [
        "setting",
        *(f"{m}" for m in variants),
        *(f"pen {d}s" for d in range(10)),
        "MNIST val pairs",
        "cost",
    ]
    return lines + md_table(header, table) + [""]


def without_end(meta: dict) -> str:
    """' (k of them recorded no end ...)' where invocations were killed (or are still running)."""
    k = meta["invocations_without_end"]
    if not k:
        return ""
    return (
        f" ({k} of them recorded no end: killed, or still running; from their start to the last "
        "run they "
        f"recorded, at least {meta['without_end_seconds_at_least'] / 60:.1f} min more)"
    )


def render_unaccounted(meta: dict, records: list[RunRecord]) -> list[str]:
    """The runs no invocation accounts for, where there are any."""
    n, outside = meta["runs_without_invocation"], meta["runs_outside_invocations"]
    if not n and not outside:
        return []
    lines = [
        "## Runs no invocation accounts for",
        "",
        f"{n} of the {meta['runs']} runs: no line of `invocations.jsonl` names or counts them "
        "(lines written "
        "before runs named their invocation count their runs without naming them), so no recorded "
        "wall "
        "time includes theirs.",
    ]
    if outside:
        compute = sum(r.metrics.wall_seconds for r in records if r.name in set(outside))
        lines[-1] += (
            " Trained outside the time span of every recorded invocation, by their recorded start "
            "and "
            f"finish ({len(outside)} runs, {compute / 60:.1f} min of compute summed over them): "
            + ", ".join(f"`{name}`" for name in outside)
            + "."
        )
    return lines + [""]


def render_uncommitted(
    study: Study, records: list[RunRecord], invocations: list[dict]
) -> list[str]:
    """Setting by setting, the runs that trained from code git did not hold (their commit recorded
    `-dirty`), and of how many the study command recorded the diff; nothing where none did."""
    dirty = [r for r in records if r.provenance.dirty is True]
    if not dirty:
        return []
    with_diff = {i["invocation"] for i in invocations if "uncommitted" in i}
    lines = [
        "## Runs trained from uncommitted code",
        "",
        "Their records name a commit with changes git did not hold (`-dirty`): no commit "
        "holds the code they trained with. Where the study command recorded the diff "
        "(`uncommitted` in its start line in `invocations.jsonl`, as a final study trained "
        "with `--allow-dirty` does), that commit and the diff hold it.",
        "",
    ]
    for setting in study.settings:
        runs = rec.select(dirty, setting=setting)
        if runs:
            commits = sorted({r.provenance.commit for r in runs})
            named = ", ".join(f"`{c}-dirty`" for c in commits)
            diffs = sum(r.provenance.invocation in with_diff for r in runs)
            total = len(rec.select(records, setting=setting))
            lines.append(
                f"- `{setting}`: {len(runs)} of {total} runs trained from uncommitted "
                f"code (commit{'s' * (len(commits) > 1)} {named}); the diff is on record "
                f"for {diffs or 'none'} of them"
            )
    return lines + [""]


def render_markdown(
    study: Study,
    rows: list[Summary],
    records: list[RunRecord],
    invocations: list[dict],
    meta: dict,
    figures: dict,
) -> str:
    key, label = _metric(records)
    by = {(r.setting, r.variant): r for r in rows}
    lines = render_preamble(study, rows, records, meta, label)
    lines += render_uncommitted(study, records, invocations)
    for comparison, settings in study.comparisons.items():
        lines += render_comparison(study, comparison, settings, by, key, figures)
    if not study.final:
        lines += render_levers(study, records)
    lines += render_digits(rows)
    if study.reference.get("note"):
        lines += ["## About the 2020 report's numbers", "", study.reference["note"].strip(), ""]
    lines += render_unaccounted(meta, records)
    lines += render_completeness(study, by)
    lines += [
        "",
        f"Run records: `{rec.PACK}` in the study's run folder (one row per run: config, metrics, "
        "provenance, epoch history); `summary.csv` and `meta.json` beside this file.",
        "",
    ]
    return "\n".join(lines)


def render_preamble(
    study: Study, rows: list[Summary], records: list[RunRecord], meta: dict, label: str
) -> list[str]:
    """The title, the study's description and how its data and runs were used, made and measured."""
    ticks = lambda values: ", ".join(f"`{v}`" for v in values)  # noqa: E731
    synthetic = (
        [
            f"**Synthetic data**: {sum(r.provenance.data == SYNTHETIC for r in records)} of these "
            "runs trained "
            "and were scored on random images with random labels (a dry run): their numbers check "
            "the "
            "pipeline and measure nothing.",
            "",
        ]
        if any(r.provenance.data == SYNTHETIC for r in records)
        else []
    )
    return [
        f"# Study `{study.name}`",
        "",
        *synthetic,
        study.description.strip(),
        "",
        data_use(study),
        "",
        f"Generated by `digitpair-train report` from {meta['runs']} run records. "
        f"The runs record commit {ticks(meta['commits'])}; machine: "
        f"{' and '.join(map(describe_machine, meta['machines']))}; device {ticks(meta['devices'])}"
        f"{UNRECORDED if UNKNOWN in meta['commits'] else ''}. "
        f"The study commands ({meta['invocations']}, `invocations.jsonl`) record commit "
        f"{ticks(meta['invocation_commits'])}; machine: "
        f"{' and '.join(map(describe_machine, meta['invocation_machines']))}; "
        f"their wall time: {meta['wall_seconds'] / 60:.1f} min{without_end(meta)}; "
        f"compute summed over runs: {meta['compute_seconds'] / 60:.1f} min. "
        f"Numbers are {label}, mean ± sample std over rounds (n = rounds); each round draws fresh "
        f"pairs (data seed = round) and a fresh initialisation. "
        f"Encoder: {' and '.join(sorted({r.encoder for r in rows}))}; "
        f"arithmetic: {' and '.join(sorted({r.precision for r in rows}))}; "
        f"comparison head: {' and '.join(sorted({r.head for r in rows}))}"
        f"{HEADS_NOTE if any(r.head == 'fc' for r in rows) else ''}.",
        "",
    ]


def render_comparison(
    study: Study, comparison: str, settings: list[str], by: dict, key: str, figures: dict
) -> list[str]:
    """One comparison's section: a variant per row, the 2020 report's and this study's settings as
    columns."""
    present = [s for s in settings if any(setting == s for setting, _ in by)]
    lines = [f"## {comparison}", ""]
    if not present:
        return lines + ["No finished runs yet.", ""]
    ref = {s: study.reference.get(s, {}) for s in present}
    # The 2020 report's printed numbers first, then this study's settings: "the report | the
    # report's networks here | ..." reads left to right.
    header = (
        ["variant"]
        + [f"2020 report, {s} (as printed)" for s in present if ref[s]]
        + [
            f"{s} ({study.settings[s].optimizer}, {study.settings[s].augmentation}, "
            f"{study.settings[s].head} head)"
            for s in present
        ]
    )
    table = []
    for variant in (mm for mm in VARIANTS if mm in study.variants):
        cells = [variant] + [as_printed(ref[s].get(variant)) for s in present if ref[s]]
        for s in present:
            row = by.get((s, variant))
            cells.append(
                fmt(getattr(row, f"{key}_mean"), getattr(row, f"{key}_std"), row.rounds)
                if row
                else "-"
            )
        table.append(cells)
    lines += md_table(header, table) + [""]
    if comparison in figures:
        lines += [f"![{comparison}]({figures[comparison][0].name})", ""]
    return lines


def render_digits(rows: list[Summary]) -> list[str]:
    digit_rows = [r for r in rows if r.test_digit_acc_mean is not None]
    if not digit_rows:
        return []
    return (
        ["## Digit accuracy (variants with digit outputs)", ""]
        + md_table(
            ["setting", "variant", "test digit accuracy (%)"],
            [
                [r.setting, r.variant, fmt(r.test_digit_acc_mean, r.test_digit_acc_std, r.rounds)]
                for r in digit_rows
            ],
        )
        + [""]
    )


def render_completeness(study: Study, by: dict) -> list[str]:
    """Which cells (setting, variant) have fewer rounds than the study's: rerunning resumes
    there."""
    expected = {(s, mm) for s in study.settings for mm in study.variants}
    missing = sorted(
        (s, mm, study.rounds - (by[(s, mm)].rounds if (s, mm) in by else 0))
        for s, mm in expected
        if (by[(s, mm)].rounds if (s, mm) in by else 0) < study.rounds
    )
    lines = ["## Completeness", ""]
    if missing:
        lines += [
            f"Not complete: {len(missing)} of {len(expected)} cells have fewer than {study.rounds} "
            "rounds. "
            "Rerunning the study command resumes exactly there.",
            "",
        ]
        return lines + md_table(
            ["setting", "variant", "rounds missing"], [[s, mm, str(k)] for s, mm, k in missing]
        )
    return lines + [f"Complete: every cell has {study.rounds} rounds."]


# --- rewriting a generated block of a document (train/readme_tables.py, benchmarks/) --------------


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"
