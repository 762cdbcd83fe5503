import csv
import dataclasses
import errno
import json
import os
import shutil
import statistics
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digitpair.core.config import RunConfig
from digitpair.lab import records
from digitpair.lab.cli import app
from digitpair.lab.executors import Local
from digitpair.lab.provenance import git_commit
from digitpair.lab.report import account, aggregate, mean_std, write_report
from digitpair.lab.study import (
    EVIDENCE,
    FORMAT,
    FORMAT_1,
    RESULTS,
    RUNS,
    Study,
    StudyError,
    dry_run_study,
    grid,
    init_seed,
    output_folders,
    report_folder,
    run_study,
    study_folders,
)

DRY = Local(dry_run=True)  # one run after the other in this process, on synthetic data
# Every committed study's records folder, wherever it lives under train/runs (evidence/ too).
STUDY_FOLDERS = study_folders()

STUDIES = ["train/studies/seed2020.toml", "train/studies/best.toml", "train/studies/tuning.toml"]


@pytest.fixture
def tiny_study():
    study = dry_run_study(Study.load("train/studies/tuning.toml"))
    return replace(
        study, variants=("simple_cnn", "shared"), settings=dict(list(study.settings.items())[:2])
    )


@pytest.mark.parametrize("path", STUDIES)
def test_study_files_load(path):
    study = Study.load(path)
    assert study.main in study.settings and study.rounds >= 3
    assert len(grid(study)) == study.rounds * len(study.settings) * len(study.variants)


def test_seed2020_is_the_reports_grid():
    study = Study.load("train/studies/seed2020.toml")
    assert study.rounds == 15 and len(grid(study)) == 375
    for cfg in study.settings.values():
        assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.selection) == (1e-3, 1000, 200, "last")
    assert {(c.optimizer, c.augmentation, c.head) for c in study.settings.values()} == {
        ("adam", "none", "fc"),
        ("adam", "seed", "fc"),
        ("sgd", "seed", "fc"),
        ("rmsprop", "seed", "fc"),
        ("adam", "none", "order"),
    }  # the report's four settings with its FC head, + Fig. 1 with ours


def test_seeds_derive_from_grid_coordinates():
    study = Study.load("train/studies/seed2020.toml")
    specs = grid(study)
    assert all(s.config.data_seed == s.round for s in specs)
    inits = [s.config.init_seed for s in specs]
    assert len(set(inits)) == len(inits)  # every run its own init
    assert all(s.config.init_seed != s.config.data_seed for s in specs)
    assert init_seed("adam_none", "shared", 3) == init_seed("adam_none", "shared", 3)
    # A run's seeds don't depend on what else is in the grid (--only, --rounds).
    only = {s.name: s.config for s in grid(study, rounds=2, only="shared")}
    assert all(only[s.name] == s.config for s in specs if s.name in only)


def test_grid_overrides_keep_seeds():
    study = Study.load("train/studies/best.toml")
    base, bf16 = (
        grid(study, rounds=2),
        grid(study, rounds=2, overrides={"precision": "bf16", "epochs": 3}),
    )
    assert [s.name for s in base] == [s.name for s in bf16]
    assert all(
        o.config == replace(b.config, precision="bf16", epochs=3) for b, o in zip(base, bf16)
    )


def test_a_record_round_trips(tiny_study, tmp_path):
    specs = grid(tiny_study)[:2]
    run_study(tiny_study, tmp_path, specs, DRY)
    written = records.load(tmp_path)  # from the run folders
    assert [r.name for r in written] == sorted(s.name for s in specs)
    assert all(
        records.RunRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r for r in written
    )
    assert written[0] == records.read_run(tmp_path / written[0].name)
    assert len(written[0].history) == written[0].config.epochs
    records.pack(tmp_path)
    for r in written:
        shutil.rmtree(tmp_path / r.name)
    assert records.load(tmp_path) == written  # from the pack alone, equal field by field


def test_a_record_lacking_a_config_field_is_refused(tiny_study, tmp_path):
    run_study(tiny_study, tmp_path, grid(tiny_study)[:1], DRY)
    row = records.load(tmp_path)[0].to_dict()
    del row["config"]["precision"]
    with pytest.raises(ValueError, match=r"lacks config fields \['precision'\]: migrate"):
        records.RunRecord.from_dict(row)


def test_migration_adds_what_old_records_lacked():
    sys.path.insert(0, "train")
    from migrate_records import migrate_config

    old = {
        "model": "shared",
        "optimizer": "adam",
        "test": True,
    }  # as written before encoder/precision/head
    assert migrate_config(old) == {
        "variant": "shared",
        "encoder": "padded",
        "precision": "fp32",
        "head": "order",
        "optimizer": "adam",
        "test": True,
        "label_smoothing": 0.0,
        "ema": 0.0,
        "val_fold": 0,
        "tta": 0,
        "members": 1,
    }
    recorded = {
        "variant": "shared",
        "encoder": "pooled",
        "precision": "bf16",
        "head": "fc",
        "label_smoothing": 0.1,
        "ema": 0.99,
        "val_fold": 2,
        "tta": 4,
        "members": 3,
    }
    assert migrate_config(recorded) == recorded  # a recorded value is never replaced


def test_committed_records_are_migrated_and_packed():
    for folder in STUDY_FOLDERS:
        assert (folder / records.PACK).is_file(), folder
        study, runs = (
            Study.load(folder / "study.toml"),
            records.load(folder),
        )  # every record complete
        assert {r.config.test for r in runs} == {study.final}, (
            folder
        )  # test pairs: final studies only
        assert all(r.provenance.device in ("cpu", "cuda") for r in runs), (
            folder
        )  # recorded, so kept


def test_provenance_in_every_new_run(tiny_study, tmp_path):
    run_study(tiny_study, tmp_path, grid(tiny_study, rounds=1), DRY)
    [invocation] = records.read_invocations(tmp_path)
    for run in records.load(tmp_path):
        p = json.loads((tmp_path / run.name / "final.json").read_text())["provenance"]
        assert set(p) == {
            "commit",
            "dirty",
            "machine",
            "torch",
            "device",
            "started_at",
            "finished_at",
            "invocation",
            "data",
        }
        assert p["invocation"] == invocation["invocation"] and invocation["ended"]
        assert p["data"] == "synthetic"  # a dry run's digits, and the record says so
        assert "unknown" not in (p["torch"], p["device"], p["started_at"], p["finished_at"])
        assert (
            p["machine"]["cpu"]
            and isinstance(p["dirty"], bool)
            and p["started_at"] <= p["finished_at"]
        )
        assert p["commit"] == git_commit().removesuffix("-dirty")


def test_non_final_study_never_scores_test_pairs(tiny_study, tmp_path):
    assert not tiny_study.final  # tuning
    run_study(tiny_study, tmp_path, grid(tiny_study, rounds=1), DRY)
    assert all(
        r.metrics.test_acc is None and r.metrics.test_digit_acc is None
        for r in records.load(tmp_path)
    )
    tested = [replace(s, config=replace(s.config, test=True)) for s in grid(tiny_study, rounds=1)]
    with pytest.raises(ValueError, match="not final"):
        run_study(tiny_study, tmp_path / "other", tested, DRY)
    text = (
        Path("train/studies/tuning.toml").read_text().replace("[base]\n", "[base]\ntest = true\n")
    )
    with pytest.raises(ValueError, match="not final"):
        Study.parse(text)
    with pytest.raises(ValueError, match="final = true"):
        Study.parse(text.replace("final = false\n", ""))
    assert all(c.test for c in Study.load("train/studies/best.toml").settings.values())


def test_one_folder_holds_one_study(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)
    run_study(tiny_study, tmp_path, specs[:2], DRY)
    # Another study into the folder: refused, naming the difference, and its study.toml not written.
    other = dry_run_study(Study.load("train/studies/best.toml"))
    with pytest.raises(ValueError, match="name 'tuning' in the folder, 'best' now"):
        run_study(other, tmp_path, grid(other, rounds=1)[:1], DRY)
    assert Study.load(tmp_path / "study.toml").name == "tuning"
    # Same name, a changed setting (a new run of it, as --epochs into the folder would make):
    # refused.
    longer = [
        replace(s, config=replace(s.config, epochs=3))
        for s in grid(tiny_study, rounds=2, setting="base")
        if s.round == 1
    ]
    with pytest.raises(ValueError, match="epochs 2 recorded, 3 asked"):
        run_study(tiny_study, tmp_path, longer, DRY)
    edited = Study.parse(tiny_study.source.replace("lr = 1e-3", "lr = 2e-3"))
    with pytest.raises(ValueError, match="setting 'base': lr 0.001 recorded, 0.002 asked"):
        run_study(replace(tiny_study, source=edited.source), tmp_path, specs[:1], DRY)
    # More rounds, variants and settings extend the study.
    assert run_study(tiny_study, tmp_path, grid(tiny_study, rounds=2), DRY)["skipped"] == 2


def test_the_folder_lock_takes_the_windows_path_where_there_is_no_fcntl(tmp_path, monkeypatch):
    """Without fcntl (Windows) the lock is msvcrt's non-blocking lock of the file's first byte; a
    refusal is the same "in use" error."""
    import types

    calls = []

    def locking(fd, mode, nbytes):
        calls.append((mode, nbytes))
        if len(calls) > 1:
            raise OSError("locked")

    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", types.SimpleNamespace(LK_NBLCK=2, locking=locking))
    with records.lock(tmp_path):
        assert (tmp_path / records.LOCK).read_text().startswith("pid ")
        with pytest.raises(ValueError, match="in use by another study invocation"):
            with records.lock(tmp_path):
                pass
    assert calls == [(2, 1), (2, 1)]


def test_a_study_folder_takes_one_invocation_at_a_time(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)[:1]
    with records.lock(tmp_path):
        with pytest.raises(ValueError, match="in use by another study invocation"):
            run_study(tiny_study, tmp_path, specs, DRY)
    # A holder killed with SIGKILL leaves no lock behind (flock dies with its process).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from digitpair.lab import records\nwith records.lock(Path(sys.argv[1])):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=f"pid {holder.pid}"):
            run_study(tiny_study, tmp_path, specs, DRY)
    finally:
        holder.kill()
        holder.wait()
    assert run_study(tiny_study, tmp_path, specs, DRY)["completed"] == 1


def test_resume_after_interruption(tiny_study, tmp_path):
    specs = grid(tiny_study)
    out = tmp_path / "runs"
    first = run_study(tiny_study, out, specs[:3], DRY)
    assert first["completed"] == 3
    # A run killed mid-write leaves a partial folder: never read as finished, cleaned next time.
    (out / f"{specs[3].name}.partial-999").mkdir()
    (out / f"{specs[3].name}.partial-999" / "final.json").write_text("{")
    second = run_study(tiny_study, out, specs, DRY)
    assert (second["completed"], second["skipped"]) == (len(specs) - 3, 3)
    assert [r.name for r in records.load(out)] == sorted(s.name for s in specs)
    assert not list(out.glob("*.partial-*"))
    third = run_study(tiny_study, out, specs, DRY)
    assert third["completed"] == 0 and len(records.load(out)) == len(specs)
    # Killed after `done` was written, before the rename: complete-looking, still not finished.
    (out / specs[0].name).rename(out / f"{specs[0].name}.partial-998")
    assert specs[0].name not in {r.name for r in records.load(out)}
    assert run_study(tiny_study, out, specs, DRY)["completed"] == 1 and not list(
        out.glob("*.partial-*")
    )
    run_dir = out / specs[0].name
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "final.json",
        "done",
        "model.safetensors",
    }
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == specs[0].config.epochs


def test_resume_refuses_a_changed_config(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)
    run_study(tiny_study, tmp_path, specs[:1], DRY)
    changed = [replace(specs[0], config=replace(specs[0].config, lr=0.5))]
    with pytest.raises(ValueError, match="different config .*lr 0.001 recorded, 0.5 asked"):
        run_study(tiny_study, tmp_path, changed, DRY)
    records.pack(tmp_path)  # packed runs are finished runs, checked alike
    shutil.rmtree(tmp_path / specs[0].name)
    with pytest.raises(ValueError, match="different config"):
        run_study(tiny_study, tmp_path, changed, DRY)
    assert run_study(tiny_study, tmp_path, specs[:1], DRY)["skipped"] == 1


def _fake_records(study, accs):
    prov = records.Provenance(*["unknown"] * 7)
    return [
        records.RunRecord(
            study.name,
            study.main,
            i,
            replace(study.settings[study.main], variant="shared"),
            records.Metrics(7, a - 1, None, a, None, 7, 800, 1000, 1.0),
            prov,
            (),
        )
        for i, a in enumerate(accs)
    ]


def test_aggregation_known_mean_std():
    study = Study.load("train/studies/best.toml")
    accs = [90.0, 92.0, 97.0]
    (row,) = aggregate(_fake_records(study, accs), study)
    assert row.rounds == 3 and row.test_acc_mean == pytest.approx(93.0)
    assert (
        row.test_acc_std == pytest.approx(statistics.stdev(accs)) == pytest.approx(3.6056, abs=1e-4)
    )
    assert row.val_acc_mean == pytest.approx(92.0) and row.test_digit_acc_mean is None
    assert mean_std([5.0]) == (5.0, None) and mean_std([None]) == (None, None)


def test_lever_table_pairs_rounds_against_the_main_setting():
    """levers.toml: `elastic` against `base`, round by round; the last epoch's validation accuracy
    (history) and the selected one; cost as a ratio of training seconds; unpaired rounds left
    out."""
    from digitpair.lab.report import paired_rows, render_levers

    study = Study.load("train/studies/levers.toml")
    prov = records.Provenance(*["unknown"] * 7)

    def run(setting, round_, selected, last, seconds):
        metrics = records.Metrics(50, selected, None, None, None, 7, 800, 1000, seconds)
        return records.RunRecord(
            study.name,
            setting,
            round_,
            replace(study.settings[setting], variant="shared_aux"),
            metrics,
            prov,
            ({"epoch": 120, "val_acc": last},),
        )

    runs = [
        run("base", 0, 97.0, 96.0, 10.0),
        run("base", 1, 98.0, 97.5, 10.0),
        run("elastic", 0, 98.0, 97.5, 12.0),
        run("elastic", 1, 98.5, 98.5, 12.0),
        run("elastic", 2, 50.0, 50.0, 99.0),
    ]  # no base run of round 2 to pair with
    (row,) = paired_rows(runs, study)
    assert (row["setting"], row["variant"], row["rounds"]) == ("elastic", "shared_aux", 2)
    assert row["changes"] == "augmentation 'elastic'"
    assert row["d_last_val_mean"] == pytest.approx(1.25) and row["d_last_val_std"] == pytest.approx(
        0.3536, abs=1e-4
    )
    assert row["d_val_mean"] == pytest.approx(0.75) and row["cost"] == pytest.approx(1.2)
    table = "\n".join(render_levers(study, runs))
    assert (
        "| `elastic` | augmentation 'elastic' |" in table and "+1.25 ± 0.35 / +0.75 ± 0.35" in table
    )
    assert "1.20x | 2 |" in table


def test_report_files(tiny_study, tmp_path):
    specs = grid(tiny_study)
    run_study(tiny_study, tmp_path / "runs", specs, DRY)
    files = write_report(tmp_path / "runs", tmp_path / "results", tiny_study)
    assert {f.name for f in files} >= {"summary.csv", "meta.json", "report.md"}
    assert any(f.suffix == ".png" and f.stat().st_size > 1000 for f in files)
    rows = list(csv.DictReader(open(tmp_path / "results" / "summary.csv")))
    assert len(rows) == len(tiny_study.settings) * len(tiny_study.variants)
    assert {
        "variant",
        "optimizer",
        "augmentation",
        "head",
        "members",
        "rounds",
        "test_acc_mean",
        "test_acc_std",
    } <= set(rows[0])
    assert all(int(r["rounds"]) == tiny_study.rounds for r in rows)
    meta = json.loads((tmp_path / "results" / "meta.json").read_text())
    assert meta["runs"] == len(specs) and meta["wall_seconds"] > 0
    assert (
        meta["machines"][0]["cpu"] and meta["commits"]
    )  # where the runs trained, recorded at run time
    assert "Complete: every cell" in (tmp_path / "results" / "report.md").read_text()


def test_cli_study_dry_run(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "seed2020",
            "--dry-run",
            "--only",
            "shared_aux",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = records.read_summary(tmp_path / "results" / records.SUMMARY)
    assert [r.variant for r in rows] == ["shared_aux"] * 5
    assert [r.head for r in rows] == ["fc", "order", "fc", "fc", "fc"]  # adam_none_order: ours
    report = (tmp_path / "results" / "report.md").read_text()
    # The head's effect under the report's protocol: the report | its networks here | ours here.
    assert (
        "| variant | 2020 report, adam_none (as printed) | adam_none (adam, none, fc head) | "
        "adam_none_order (adam, none, order head) |"
    ) in report
    assert "| shared_aux | 86.9 ± 0.08 |" in report
    again = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "seed2020",
            "--dry-run",
            "--only",
            "shared_aux",
            "--out",
            str(tmp_path),
        ],
    )
    assert again.exit_code == 0 and "10 already finished" in again.output


def test_cli_study_errors(tmp_path):
    result = CliRunner().invoke(app, ["study", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "nope.toml" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "study.toml" in result.output
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--set",
            "precision=fp8",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "precision='fp8'" in result.output


def test_a_settings_head_applies_to_the_pair_networks_only():
    study = Study.load("train/studies/seed2020.toml")
    heads = {(s.setting, s.config.variant): s.config.head for s in grid(study, rounds=1)}
    assert (
        heads[("adam_none", "shared_aux")] == "fc"
        and heads[("adam_none_order", "shared_aux")] == "order"
    )
    assert heads[("adam_none", "simple_cnn")] == "order"  # compares in code under either head
    best = Study.load("train/studies/best.toml")
    main, fc, ensemble = (
        best.settings["recipe"],
        best.settings["recipe_fc"],
        best.settings["ensemble5"],
    )
    assert fc.head == "fc" and main == replace(fc, head="order")  # the head is the only difference
    assert ensemble.members == 5 and main == replace(ensemble, members=1)  # and the members


@pytest.mark.parametrize("folder", STUDY_FOLDERS, ids=lambda folder: str(folder.relative_to(RUNS)))
def test_report_from_unchanged_records_changes_no_byte(folder, tmp_path, monkeypatch):
    """`digitpair-train report` on a committed study's records, in a copy of the layout, writes by
    default the committed report, byte for byte, in its place (evidence/ too), and nothing else."""
    root = Path.cwd()
    shutil.copytree(folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    committed = {p.name: p.read_bytes() for p in (root / report_folder(folder)).iterdir()}
    written = [p for p in RESULTS.rglob("*") if p.is_file()]
    assert {str(p): p.read_bytes() for p in written} == {
        str(report_folder(folder) / name): data for name, data in committed.items()
    }
    assert (folder / records.PACK).read_bytes() == (root / folder / records.PACK).read_bytes()


def test_the_layout_shows_the_study_the_choices_and_the_evidence():
    """train/runs and train/results hold the same studies in the same places: the study and the
    choices at the top, the evidence for past decisions in evidence/; no other folder."""
    places = [folder.relative_to(RUNS) for folder in STUDY_FOLDERS]
    assert {p.parts[0] for p in places if len(p.parts) > 1} == {EVIDENCE}
    assert {"best", "seed2020"} <= set(map(str, places))
    for top in (RUNS, RESULTS):
        folders = [
            p
            for p in [*top.iterdir(), *(top / EVIDENCE).iterdir()]
            if p.is_dir() and p.name != EVIDENCE
        ]
        assert sorted(p.relative_to(top) for p in folders) == places, top
    assert all((report_folder(folder) / "report.md").is_file() for folder in STUDY_FOLDERS)


def test_the_report_folder_follows_the_records_place_under_train_runs(tmp_path, monkeypatch):
    assert report_folder(Path("train/runs/best")) == Path("train/results/best")
    assert report_folder(Path("train/runs/evidence/best-v1")) == Path(
        "train/results/evidence/best-v1"
    )
    assert report_folder(tmp_path / "train/runs/evidence/best-v1") == Path(
        "train/results/evidence/best-v1"
    )
    assert report_folder(tmp_path / "elsewhere" / "mine") == Path(
        "train/results/mine"
    )  # outside train/runs
    best = Study.load("train/studies/best.toml")
    monkeypatch.chdir(tmp_path)
    assert output_folders(best, {}, None, None) == (
        Path("train/runs/best"),
        Path("train/results/best"),
    )
    assert output_folders(best, {"epochs": 5}, None, None) == (
        Path("train/runs/best-epochs=5"),
        Path("train/results/best-epochs=5"),
    )
    (tmp_path / "train/runs/evidence/best").mkdir(
        parents=True
    )  # resumed where its records are, not copied
    assert output_folders(best, {}, None, None) == (
        Path("train/runs/evidence/best"),
        Path("train/results/evidence/best"),
    )
    assert output_folders(best, {}, tmp_path / "x", None) == (
        tmp_path / "x",
        Path("train/results/x"),
    )
    assert output_folders(best, {}, None, tmp_path / "r") == (
        Path("train/runs/evidence/best"),
        tmp_path / "r",
    )


def test_every_committed_summary_reads_back_typed_and_writes_the_same_bytes(tmp_path):
    """read_summary loses nothing: each committed summary.csv, read into Summary rows and written
    again, is the same file; its numbers are numbers and its empty cells None."""
    for path in (report_folder(folder) / records.SUMMARY for folder in STUDY_FOLDERS):
        rows = records.read_summary(path)
        records.write_summary(tmp_path / records.SUMMARY, rows)
        assert (tmp_path / records.SUMMARY).read_bytes() == path.read_bytes(), path
        cells = [dataclasses.asdict(r) for r in rows]
        assert all(
            isinstance(c["rounds"], int) and records.UNKNOWN not in c.values() for c in cells
        ), path
        assert all(
            v is None or isinstance(v, float)
            for c in cells
            for k, v in c.items()
            if k.endswith(("_mean", "_std"))
        )


def test_a_summary_says_unknown_for_what_it_does_not_record(tmp_path):
    path = tmp_path / records.SUMMARY
    path.write_text("setting,variant,rounds,test_acc_mean,test_acc_std\nmain,shared,,98.5,\n")
    (row,) = records.read_summary(path)
    assert (row.setting, row.variant, row.test_acc_mean, row.test_acc_std) == (
        "main",
        "shared",
        98.5,
        None,
    )
    assert (
        row.rounds == row.members == row.optimizer == row.val_acc_mean == records.UNKNOWN
    )  # never inferred
    path.write_text("setting,variant,rounds\nmain,shared,ten\n")
    with pytest.raises(
        ValueError,
        match=r"summary.csv line 2: rounds = 'ten': a whole number or 'unknown' expected",
    ):
        records.read_summary(path)


def test_readme_results_blocks_match_their_sources():
    """The generated tables (the README's short results table, the study index's full one, and
    docs/other-writers.md's table) are what `python train/readme_tables.py` writes from the reports'
    summaries and benchmarks/other_writers.json, each in the file that holds its markers."""
    sys.path.insert(0, "train")
    from readme_tables import BEGIN, OTHER_BEGIN, SHORT_BEGIN, blocks

    written = blocks()
    assert [(str(path), begin) for path, begin, _, _ in written] == [
        ("README.md", SHORT_BEGIN),
        ("train/results/README.md", BEGIN),
        ("docs/other-writers.md", OTHER_BEGIN),
    ]
    for path, begin, end, body in written:
        text = path.read_text()
        assert text.count(begin) == 1 and text.count(end) == 1, path
        assert text.split(begin, 1)[1].split(end, 1)[0].strip() == body, path


def test_a_setting_of_mixed_heads_resumes_variant_by_variant(tmp_path):
    """In an fc setting simple_cnn keeps the order rule: resuming another variant of that setting
    checks it against a finished run of either head."""
    study = dry_run_study(Study.load("train/studies/seed2020.toml"))
    specs = [s for s in grid(study, rounds=1) if s.setting == "adam_none"]
    run_study(study, tmp_path, [s for s in specs if s.config.variant == "shared"], DRY)
    run_study(study, tmp_path, [s for s in specs if s.config.variant == "simple_cnn"], DRY)
    assert run_study(study, tmp_path, specs, DRY)["completed"] == len(specs) - 2
    assert {r.config.variant: r.config.head for r in records.load(tmp_path)} == {
        "simple_cnn": "order",
        "shared": "fc",
        "shared_aux": "fc",
        "unshared": "fc",
        "unshared_aux": "fc",
    }


# --- study files: checked whole before anything is written --------------------------------------

PROBE = """
[study]
name = "probe"
final = false
rounds = 2
main = "a"

[base]
epochs = 2

[settings.a]

[settings.b]
lr = 0.01

[comparisons]
lr = ["a", "b"]
"""


def without(line: str) -> str:
    return PROBE.replace(line + "\n", "")


@pytest.mark.parametrize(
    "text, messages",
    [
        (without('main = "a"'), ["[study] needs main"]),
        (without('name = "probe"'), ["[study] needs name"]),
        (without("rounds = 2"), ["[study] needs rounds"]),
        (without("final = false"), ["[study] needs final = true (scores the test pairs) or false"]),
        (
            PROBE.replace("rounds = 2", 'rounds = "3"'),
            ["[study] rounds = '3': a whole number expected"],
        ),
        (PROBE.replace("rounds = 2", "rounds = -1"), ["[study] rounds = -1: 1 to 10,000 rounds"]),
        (
            PROBE.replace("rounds = 2", "rounds = 1000000"),
            ["[study] rounds = 1000000: 1 to 10,000 rounds"],
        ),
        (
            PROBE.replace("rounds = 2", "rounds = 2\nmodels = 5"),
            ["[study] models = 5: an array expected"],
        ),
        (
            PROBE.replace("rounds = 2", 'rounds = 2\nmodels = ["shared", "resnet"]'),
            ["[study] models = ['shared', 'resnet']: one or more of"],
        ),
        (
            PROBE.replace("epochs = 2", 'epochs = "ten"'),
            ["[base] epochs = 'ten': a whole number expected"],
        ),
        (PROBE.replace("lr = 0.01", "lr = true"), ["[settings.b] lr = True: a number expected"]),
        (
            PROBE.replace("lr = 0.01", "lrate = 0.01"),
            ["[settings.b] lrate: unknown key; the RunConfig fields"],
        ),
        (
            PROBE.replace("lr = 0.01", "init_seed = 3"),
            ["[settings.b] init_seed: not set in a study file; seeds derive"],
        ),
        (
            PROBE.replace("lr = 0.01", 'optimizer = "lbfgs"'),
            ["[settings.b]: optimizer='lbfgs'; choose one of"],
        ),
        (PROBE.replace("[base]", "[stduy]\nx = 1\n\n[base]"), ["[stduy]: unknown table"]),
        (PROBE.replace("[study]", "[study]\nowner = 'me'"), ["[study] owner: unknown key"]),
        (
            'settings = ["a", "b"]\n' + PROBE.split("[base]")[0],
            ["[settings] is an array (['a', 'b']); a table expected"],
        ),
        (
            'comparisons = ["a"]\n' + PROBE.split("[comparisons]")[0],
            ["[comparisons] is an array (['a']); a table expected"],
        ),
        (
            PROBE.replace('lr = ["a", "b"]', 'lr = ["a", "c"]'),
            ["[comparisons] lr = ['a', 'c']: an array of setting names"],
        ),
        (
            PROBE.replace('name = "probe"', 'name = "../elsewhere"'),
            ["[study] name '../elsewhere': a name is letters"],
        ),
        (PROBE + '[settings."x/y"]\n', ["setting 'x/y': a name is letters"]),
        (
            PROBE + "[reference.a]\nshared = 86.8\n",
            ["[reference.a] shared = 86.8: a variant's [mean, std]"],
        ),
        ("[study]\nx = " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
        ("[study\n", ["not TOML: "]),
        (
            PROBE.replace("description", "x") + 'description = """' + "x" * 10_000_000 + '"""\n',
            ["bytes; a study file is at most 1,048,576"],
        ),
        # Every problem at once, one line each.
        (
            PROBE.replace("rounds = 2", 'rounds = "3"')
            .replace("epochs = 2", 'epochs = "ten"')
            .replace("lr = 0.01", "lrate = 1"),
            [
                "[study] rounds = '3'",
                "[base] epochs = 'ten'",
                "[settings.b] lrate: unknown key",
                "(3 problems)",
            ],
        ),
    ],
)
def test_a_bad_study_file_is_one_line_per_problem_exit_2_and_writes_nothing(
    text, messages, tmp_path
):
    path = tmp_path / "probe.toml"
    path.write_text(text)
    result = CliRunner().invoke(
        app, ["study", str(path), "--dry-run", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.startswith(f"error: {path}: not a valid study file"), result.output
    assert all(m in result.output for m in messages), result.output
    assert len(result.output.strip().splitlines()) == 1 + int(
        result.output.split("(")[1].split(" ")[0]
    )
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "probe.toml"
    ]


def test_a_grid_of_many_runs_needs_max_runs(tmp_path):
    path = tmp_path / "probe.toml"
    path.write_text(PROBE.replace("rounds = 2", "rounds = 600"))  # 600 x 2 settings x 5 variants
    for args in ([], ["--dry-run", "--rounds", "600"]):
        result = CliRunner().invoke(
            app, ["study", str(path), *args, "--out", str(tmp_path / "out")]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert (
            "6,000 runs (600 rounds x 2 setting(s) x 5 variant(s)): more than --max-runs 5,000; "
            "give --max-runs 6000"
        ) in result.output
    assert not (tmp_path / "out").exists()
    assert (
        CliRunner()
        .invoke(
            app,
            [
                "study",
                str(path),
                "--dry-run",
                "--rounds",
                "600",
                "--only",
                "shared",
                "--setting",
                "a",
                "--max-runs",
                "600",
                "--rounds",
                "1",
                "--out",
                str(tmp_path / "out"),
            ],
        )
        .exit_code
        == 0
    )


def test_reports_say_which_runs_no_invocation_accounts_for():
    """seed2020's first invocation (22 runs, interrupted) ran before interrupted ones were recorded;
    every other committed study's runs are all accounted for, and only best's stopped invocations
    have no end line."""
    for folder in STUDY_FOLDERS:
        counts = account(records.load(folder), records.read_invocations(folder))
        if folder.name == "seed2020":
            assert (
                counts["runs_without_invocation"] == len(counts["runs_outside_invocations"]) == 22
            )
            assert {name.rsplit("-", 1)[1] for name in counts["runs_outside_invocations"]} == {
                "r00"
            }
            assert (
                "22 of the 375 runs: no line of `invocations.jsonl` names or counts them"
                in Path("train/results/seed2020/report.md").read_text()
            )
        else:
            assert (counts["runs_without_invocation"], counts["runs_outside_invocations"]) == (
                0,
                [],
            ), folder
        # best: three invocations of the conventions200 settings were stopped on purpose (one to
        # fix what a run's -dirty flag looks at, two at a session's end); the report says so.
        assert counts["invocations_without_end"] == (3 if folder.name == "best" else 0), folder


def test_runconfig_is_bests_recipe_and_study_files_say_only_what_differs():
    """RunConfig() is `best`'s main setting; a format-2 file's [base] names no field at its
    default."""
    best = Study.load("train/studies/best.toml")
    assert best.settings[best.main] == RunConfig(test=True)
    defaults = RunConfig().to_dict()
    for path in Path("train/studies").glob("*.toml"):
        raw = tomllib.loads(path.read_text())
        assert raw["study"].get("format") == FORMAT, path
        same = [k for k, v in raw.get("base", {}).items() if defaults[k] == v]
        assert not same, f"{path} [base] repeats RunConfig()'s {same}"


def test_a_study_file_without_format_starts_from_the_first_recipe():
    """The study.toml copies kept in record folders predate `format`: they read as they ran."""
    text = (
        '[study]\nname = "old"\nfinal = false\nrounds = 1\nmain = "a"\n'
        '[base]\naugmentation = "none"\n[settings.a]\n'
    )
    assert Study.parse(text).settings["a"] == RunConfig(**FORMAT_1, augmentation="none")
    current = Study.parse(text.replace('main = "a"', 'main = "a"\nformat = 2')).settings["a"]
    assert current == RunConfig(augmentation="none")
    with pytest.raises(StudyError, match="format = 3: 1 or 2"):
        Study.parse(text.replace('main = "a"', 'main = "a"\nformat = 3'))


def test_the_committed_study_files_and_folders_pass_the_checks():
    for path in [
        *Path("train/studies").glob("*.toml"),
        *(folder / "study.toml" for folder in STUDY_FOLDERS),
    ]:
        study = Study.load(path)
        assert study.settings and study.main in study.settings, path


# --- write errors: one line naming the folder and the cause, exit 2, no partial left --------------


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, options) -> a tmpfs at tmp_path/name, or None where this process can't mount one
    (not root, no mount(8), a container that forbids it: the tests then raise the OSError
    themselves)."""
    mounted = []

    def mount(name: str, options: str):
        path = tmp_path / name
        path.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return None
        if (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "digitpair-test", str(path)],
                capture_output=True,
            ).returncode
            != 0
        ):
            return None
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=True)


def one_error_line(result) -> str:
    """The command's one error line, its last (after the lines of the runs that finished)."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.output
    return lines[-1]


def test_a_read_only_output_folder_is_one_line_and_exit_2(tmpfs, tmp_path, monkeypatch):
    ro = tmpfs("ro", "ro,size=1m")
    if ro is None:
        ro = tmp_path / "ro"
        mkdir = Path.mkdir

        def read_only(self, *args, **kwargs):
            if self == ro or ro in self.parents:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only)
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--only",
            "shared",
            "--setting",
            "recipe",
            "--out",
            str(ro),
        ],
    )
    assert one_error_line(result) == f"error: can't write to {ro / 'runs'}: Read-only file system"
    assert not list(ro.iterdir())
    # The report of finished runs into a read-only results folder: the same.
    runs = tmp_path / "done"
    assert (
        CliRunner()
        .invoke(
            app,
            [
                "study",
                "--preset",
                "best",
                "--dry-run",
                "--only",
                "shared",
                "--setting",
                "recipe",
                "--out",
                str(runs),
            ],
        )
        .exit_code
        == 0
    )
    result = CliRunner().invoke(
        app, ["report", str(runs / "runs"), "--results", str(ro / "results")]
    )
    assert (
        one_error_line(result) == f"error: can't write to {ro / 'results'}: Read-only file system"
    )


def test_a_full_disk_during_a_run_is_one_line_and_exit_2_and_leaves_no_partial(
    tmpfs, tmp_path, monkeypatch
):
    # Room for the first two runs (single networks, ~130 kB each), not for the third (an ensemble of
    # 5).
    full = tmpfs("full", "size=400k")
    if full is None:
        full = tmp_path / "full"
        from safetensors import SafetensorError

        from digitpair.core import weights

        save_file, saved = weights.save_file, []

        def disk_fills(*args, **kwargs):
            saved.append(args[1])
            if len(saved) > 2:
                raise SafetensorError(
                    "Error while serializing: I/O error: No space left on device (os error 28)"
                )
            return save_file(*args, **kwargs)

        monkeypatch.setattr(weights, "save_file", disk_fills)
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--only",
            "shared",
            "--rounds",
            "1",
            "--out",
            str(full),
            "--results",
            str(tmp_path / "results"),
        ],
    )
    runs = full / "runs"
    assert one_error_line(result) == (
        f"error: can't write run ensemble5-shared-r00 in {runs}: No space left on "
        f"device; the partial ensemble5-shared-r00.partial-{os.getpid()} was removed"
    )
    assert not list(runs.glob("*.partial-*"))  # removed then, not next time
    kept = records.load(runs)
    assert [r.name for r in kept] == [
        "recipe-shared-r00",
        "recipe_fc-shared-r00",
    ]  # the finished runs stay
    [invocation] = records.read_invocations(runs)
    assert {r.provenance.invocation for r in kept} == {invocation["invocation"]}


# --- uncommitted code: what git does not hold, read without touching the index ----------------


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def checkout(tmp_path):
    """A git checkout of a tiny package and study file, committed, with an ignored cache."""
    root = tmp_path / "repo"
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    for name in ("a.py", "b.py", "gone.py"):
        (root / "pkg" / name).write_text(f"# {name}\n")
    (root / "study.toml").write_text("[study]\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "tiny")
    (root / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\0")  # ignored: never named
    return root


def test_uncommitted_files_and_patch_hold_every_change_git_does_not(checkout, tmp_path):
    from digitpair.lab.provenance import uncommitted_files, uncommitted_patch

    paths = [checkout / "pkg", checkout / "study.toml"]
    assert uncommitted_files(checkout, paths) == [] and uncommitted_patch(checkout, paths) == ""
    (checkout / "pkg" / "a.py").write_text("# a.py, changed\n")  # not staged
    (checkout / "pkg" / "b.py").write_text("# b.py, staged\n")
    git(checkout, "add", "pkg/b.py")
    (checkout / "pkg" / "gone.py").unlink()
    (checkout / "pkg" / "sub").mkdir()
    (checkout / "pkg" / "sub" / "new.py").write_text("# new, untracked\n")
    (checkout / "elsewhere.py").write_text("# untracked, not under the paths\n")
    index = git(checkout, "diff", "--cached", "--name-status")
    assert uncommitted_files(checkout, paths) == [
        "pkg/a.py",
        "pkg/b.py",
        "pkg/gone.py",
        "pkg/sub/new.py",
    ]
    outside = tmp_path / "mine.toml"
    outside.write_text("[study]\nname = 'mine'\n")
    # A file outside the checkout, which git can't hold, is named whole.
    assert uncommitted_files(checkout, [*paths, outside])[-1] == str(outside.resolve())
    patch = uncommitted_patch(checkout, paths)
    assert git(checkout, "diff", "--cached", "--name-status") == index  # the index is as it was
    # The commit and the patch hold the code: applied to a clean copy, the same files.
    clean = tmp_path / "clean"
    git(tmp_path, "clone", "-q", str(checkout), str(clean))
    (tmp_path / "patch.diff").write_text(patch)
    git(clean, "apply", str(tmp_path / "patch.diff"))
    for path in ("pkg/a.py", "pkg/b.py", "pkg/sub/new.py", "study.toml"):
        assert (clean / path).read_text() == (checkout / path).read_text(), path
    assert not (clean / "pkg" / "gone.py").exists() and not (clean / "elsewhere.py").exists()


def test_outside_a_git_checkout_the_code_is_unknown(monkeypatch, tmp_path):
    from digitpair.lab import provenance
    from digitpair.lab.provenance import UnknownCode, uncommitted

    package = tmp_path / "digitpair"
    monkeypatch.delenv("DIGITPAIR_COMMIT", raising=False)
    monkeypatch.setattr(provenance, "__file__", str(package / "lab" / "provenance.py"))
    with pytest.raises(
        UnknownCode,
        match=f"digitpair is imported from {tmp_path}, which is not a "
        "git checkout: the commit of its code cannot be known",
    ):
        uncommitted([package])
    # A copy sent elsewhere names its code: a commit alone is vouched for, one with changes is not.
    monkeypatch.setenv("DIGITPAIR_COMMIT", "abc1234")
    assert uncommitted([package]) == {"files": [], "patch": ""}
    monkeypatch.setenv("DIGITPAIR_COMMIT", "abc1234-dirty")
    with pytest.raises(UnknownCode, match="DIGITPAIR_COMMIT=abc1234-dirty names changes"):
        uncommitted([package])


def test_a_runs_commit_is_dirty_for_changes_to_the_code_only(checkout, monkeypatch):
    """Reports, weights and docs a study writes are its output: they leave the commit clean; a
    change to the package, or a new file in it, makes it "-dirty"."""
    from digitpair.lab import provenance

    (checkout / "digitpair").mkdir()
    (checkout / "digitpair" / "code.py").write_text("# code\n")
    (checkout / "report.md").write_text("# report\n")
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "code and a report")
    monkeypatch.delenv("DIGITPAIR_COMMIT", raising=False)
    monkeypatch.setattr(provenance, "checkout", lambda: checkout)
    head = git(checkout, "rev-parse", "--short", "HEAD").strip()
    (checkout / "report.md").write_text("# report, regenerated\n")
    assert provenance.git_commit() == head
    (checkout / "digitpair" / "new.py").write_text("# new\n")
    assert provenance.git_commit() == head + "-dirty"
    (checkout / "digitpair" / "new.py").unlink()
    (checkout / "digitpair" / "code.py").write_text("# code, changed\n")
    assert provenance.git_commit() == head + "-dirty"


def test_a_report_says_which_runs_trained_from_uncommitted_code():
    from digitpair.lab.report import render_uncommitted

    study = Study.load("train/studies/best.toml")
    clean = _fake_records(study, [90.0, 91.0, 92.0])
    provenances = [("abc1234", True, "i1"), ("def5678", True, "i2"), ("def5678", False, "i2")]
    runs = [
        replace(r, provenance=replace(r.provenance, commit=c, dirty=d, invocation=i))
        for r, (c, d, i) in zip(clean, provenances)
    ]
    invocations = [
        {"invocation": "i1", "uncommitted": {"files": ["pkg/a.py"], "patch": "..."}},
        {"invocation": "i2"},
    ]
    assert render_uncommitted(study, runs, invocations)[-2:] == [
        "- `recipe`: 2 of 3 runs trained from uncommitted code (commits `abc1234-dirty`, "
        "`def5678-dirty`); the diff is on record for 1 of them",
        "",
    ]
    assert render_uncommitted(study, clean, invocations) == []  # none did: nothing said
    assert render_uncommitted(study, runs[2:], invocations) == []
