"""Tables and figures of a study, computed from its run records (never typed by hand).

`write_report(runs_dir, results_dir, study)` writes summary.csv, meta.json, report.md and one
PNG per comparison. Every table and figure states n (rounds per cell), the commit and machine.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path

from .models import VARIANTS
from .study import Study, git_commit, load_records, machine
from .training import RunConfig

COLUMNS = ["setting", "variant", "optimizer", "augmentation", "lr", "epochs", "encoder", "precision",
           "rounds",
           "test_acc_mean", "test_acc_std", "test_digit_acc_mean", "test_digit_acc_std",
           "val_acc_mean", "val_acc_std", "parameters", "train_seconds_mean"]


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n - 1); None where undefined."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(records: list[dict], study: Study) -> list[dict]:
    """One row per (setting, model) in the study's order, with mean/std over rounds."""
    rows = []
    for setting in study.settings:
        for model in (m for m in VARIANTS if m in study.models):
            runs = [r for r in records if r["setting"] == setting and r["variant"] == model]
            if not runs:
                continue
            cfg, finals = RunConfig.from_record(runs[0]["train_config"]), [r["final"] for r in runs]
            row = {"setting": setting, "variant": model, "optimizer": cfg.optimizer,
                   "augmentation": cfg.augmentation, "lr": cfg.lr, "epochs": cfg.epochs,
                   "encoder": cfg.encoder, "precision": cfg.precision,
                   "rounds": len(runs), "parameters": finals[0]["parameters"],
                   "train_seconds_mean": statistics.fmean(f["wall_seconds"] for f in finals)}
            for key in ("test_acc", "test_digit_acc", "val_acc"):
                row[f"{key}_mean"], row[f"{key}_std"] = mean_std([f[key] for f in finals])
            row.pop("val_digit_acc_mean", None)
            rows.append(row)
    return rows


def _fmt(mean, std, n=None) -> str:
    if mean is None:
        return "-"
    s = f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")
    return s + (f" (n={n})" if n is not None else "")


def describe_machine(m: dict) -> str:
    return f"{m['gpu'] + ', ' if m['gpu'] else ''}{m['cpu']} ({m['cpu_count']} cores), torch {m['torch']}"


def _metric(records: list[dict]) -> tuple[str, str]:
    if any(r["final"]["test_acc"] is not None for r in records):
        return "test_acc", "test pair accuracy (%)"
    return "val_acc", "validation pair accuracy (%)"


def plot_comparison(records: list[dict], study: Study, settings: list[str], title: str,
                    path: Path, footer: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = _metric(records)
    models = [m for m in VARIANTS if m in study.models]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) * max(1, len(settings)) ** 0.5), 4.5))
    width = 0.8 / len(settings)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ns = []
    for k, setting in enumerate(settings):
        data = [[r["final"][key] for r in records if r["setting"] == setting and r["variant"] == m]
                for m in models]
        ns += [len(d) for d in data if d]
        pos = [i + (k - (len(settings) - 1) / 2) * width for i in range(len(models))]
        keep = [(p, d) for p, d in zip(pos, data) if d]
        if not keep:
            continue
        bp = ax.boxplot([d for _, d in keep], positions=[p for p, _ in keep], widths=width * 0.85,
                        patch_artist=True, showmeans=True, meanprops={"marker": "D", "markersize": 4})
        for box in bp["boxes"]:
            box.set_facecolor(colors[k % len(colors)])
            box.set_alpha(0.6)
        ax.plot([], [], "s", color=colors[k % len(colors)], alpha=0.6, label=setting)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel(label)
    ax.set_xlabel("variant")
    n_text = f"n = {min(ns)} rounds per box" if ns and min(ns) == max(ns) else f"n = {min(ns, default=0)}-{max(ns, default=0)} rounds per box"
    ax.set_title(f"{title}\n{n_text}", fontsize=11)
    if len(settings) > 1:
        ax.legend(title="setting", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.text(0.01, 0.01, footer, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(runs_dir: str | Path, results_dir: str | Path, study: Study) -> list[Path]:
    runs_dir, results_dir = Path(runs_dir), Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    records = load_records(runs_dir)
    rows = aggregate(records, study)
    written = []

    with open(results_dir / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({k: (round(v, 4) if isinstance(v, float) else ("" if v is None else v))
                        for k, v in row.items()})
    written.append(results_dir / "summary.csv")

    invocations = []
    if (runs_dir / "invocations.jsonl").is_file():
        invocations = [json.loads(l) for l in (runs_dir / "invocations.jsonl").read_text().splitlines() if l]
    # Where and at which commit the runs trained, as each study invocation recorded it
    # (invocations from before these fields existed ran where the report is generated).
    here = machine()
    machines = [i.get("machine") or here for i in invocations] or [here]
    meta = {"study": study.name, "runs": len(records), "rounds": study.rounds,
            "wall_seconds": sum(i["wall_seconds"] for i in invocations),
            "compute_seconds": sum(r["final"]["wall_seconds"] for r in records),
            "invocations": len(invocations), "workers": sorted({i["workers"] for i in invocations}),
            "commit": git_commit(), "run_commits": sorted({i["commit"] for i in invocations if "commit" in i}),
            "machines": list({json.dumps(m, sort_keys=True): m for m in machines}.values()),
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (results_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    written.append(results_dir / "meta.json")

    footer = f"digitpair {meta['commit']} | {' + '.join(map(describe_machine, meta['machines']))} | study {study.name}"
    figures = {}
    for comparison, settings in study.comparisons.items():
        settings = [s for s in settings if any(r["setting"] == s for r in records)]
        if not settings:
            continue
        path = results_dir / f"fig_{comparison}.png"
        plot_comparison(records, study, settings, f"{study.name}: {comparison}", path, footer)
        figures[comparison] = (path, settings)
        written.append(path)

    (results_dir / "report.md").write_text(render_markdown(study, rows, records, meta, figures))
    written.append(results_dir / "report.md")
    return written


def render_markdown(study: Study, rows: list[dict], records: list[dict], meta: dict,
                    figures: dict) -> str:
    key, label = _metric(records)
    by = {(r["setting"], r["variant"]): r for r in rows}
    trained = " and ".join(map(describe_machine, meta["machines"]))
    at = f" at commit {', '.join(f'`{c}`' for c in meta['run_commits'])}" if meta["run_commits"] else ""
    lines = [f"# Study `{study.name}`", "", study.description.strip(), "",
             f"Generated from {meta['runs']} run records by `digitpair-train report` at commit "
             f"`{meta['commit']}`; trained on {trained}{at}. "
             f"Wall time of the study command(s): {meta['wall_seconds'] / 60:.1f} min; "
             f"compute summed over runs: {meta['compute_seconds'] / 60:.1f} min. "
             f"Numbers are {label}, mean ± sample std over rounds (n = rounds); each round draws fresh "
             f"pairs (data seed = round) and a fresh initialisation. "
             f"Encoder: {' and '.join(sorted({r['encoder'] for r in rows}))}; "
             f"arithmetic: {' and '.join(sorted({r['precision'] for r in rows}))}.", ""]
    for comparison, settings in study.comparisons.items():
        present = [s for s in settings if any(r["setting"] == s for r in rows)]
        lines += [f"## {comparison}", ""]
        if not present:
            lines += ["No finished runs yet.", ""]
            continue
        ref = {s: study.reference.get(s, {}) for s in present}
        has_ref = any(ref.values())
        header = ["variant"] + [f"{s} ({study.settings[s].optimizer}, {study.settings[s].augmentation})"
                                for s in present]
        if has_ref:
            header += [f"2020 report, {s}" for s in present if ref[s]]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for model in (mm for mm in VARIANTS if mm in study.models):
            cells = [model]
            for s in present:
                row = by.get((s, model))
                cells.append(_fmt(row[f"{key}_mean"], row[f"{key}_std"], row["rounds"]) if row else "-")
            if has_ref:
                for s in present:
                    if ref[s]:
                        value = ref[s].get(model)
                        cells.append(f"{value[0]} ± {value[1]}" if value else "-")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if comparison in figures:
            lines += [f"![{comparison}]({figures[comparison][0].name})", ""]
    digit_rows = [r for r in rows if r["test_digit_acc_mean"] is not None]
    if digit_rows:
        lines += ["## Digit accuracy (variants with digit outputs)", "", "| setting | variant | test digit accuracy (%) |",
                  "| --- | --- | --- |"]
        lines += [f"| {r['setting']} | {r['variant']} | {_fmt(r['test_digit_acc_mean'], r['test_digit_acc_std'], r['rounds'])} |"
                  for r in digit_rows]
        lines.append("")
    if study.reference.get("note"):
        lines += ["## About the 2020 report's numbers", "", study.reference["note"].strip(), ""]
    expected = {(s, mm) for s in study.settings for mm in study.models}
    missing = sorted((s, mm, study.rounds - (by[(s, mm)]["rounds"] if (s, mm) in by else 0))
                     for s, mm in expected if (by[(s, mm)]["rounds"] if (s, mm) in by else 0) < study.rounds)
    lines += ["## Completeness", ""]
    if missing:
        lines += [f"Not complete: {len(missing)} of {len(expected)} cells have fewer than {study.rounds} rounds. "
                  "Rerunning the study command resumes exactly there.", "",
                  "| setting | variant | rounds missing |", "| --- | --- | --- |"]
        lines += [f"| {s} | {mm} | {k} |" for s, mm, k in missing]
    else:
        lines.append(f"Complete: every cell has {study.rounds} rounds.")
    lines += ["", "Per-run records: `config.json`, `metrics.jsonl`, `final.json` in the study's run folder; "
              "`summary.csv` and `meta.json` beside this file.", ""]
    return "\n".join(lines)
