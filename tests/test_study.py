import csv
import json
import statistics
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from digitpair.cli import app
from digitpair.report import aggregate, mean_std, write_report
from digitpair.executors import Local
from digitpair.study import Study, dry_run_study, grid, init_seed, load_records, run_study

DRY = Local(dry_run=True)   # one run after the other in this process, on synthetic data

STUDIES = ["train/studies/seed2020.toml", "train/studies/best.toml", "train/studies/tuning.toml"]


@pytest.fixture
def tiny_study():
    study = dry_run_study(Study.load("train/studies/tuning.toml"))
    return replace(study, models=("simple_cnn", "shared"), settings=dict(list(study.settings.items())[:2]))


@pytest.mark.parametrize("path", STUDIES)
def test_study_files_load(path):
    study = Study.load(path)
    assert study.main in study.settings and study.rounds >= 3
    assert len(grid(study)) == study.rounds * len(study.settings) * len(study.models)


def test_seed2020_is_the_reports_grid():
    study = Study.load("train/studies/seed2020.toml")
    assert study.rounds == 15 and len(grid(study)) == 300
    for cfg in study.settings.values():
        assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.selection) == (1e-3, 1000, 200, "last")
    assert {(c.optimizer, c.augmentation) for c in study.settings.values()} == {
        ("adam", "none"), ("adam", "seed"), ("sgd", "seed"), ("rmsprop", "seed")}


def test_seeds_derive_from_grid_coordinates():
    study = Study.load("train/studies/seed2020.toml")
    specs = grid(study)
    assert all(s.config.data_seed == s.round for s in specs)
    inits = [s.config.init_seed for s in specs]
    assert len(set(inits)) == len(inits)                        # every run its own init
    assert all(s.config.init_seed != s.config.data_seed for s in specs)
    assert init_seed("adam_none", "shared", 3) == init_seed("adam_none", "shared", 3)
    # A run's seeds don't depend on what else is in the grid (--only, --rounds).
    only = {s.name: s.config for s in grid(study, rounds=2, only="shared")}
    assert all(only[s.name] == s.config for s in specs if s.name in only)


def test_grid_overrides_keep_seeds():
    study = Study.load("train/studies/best.toml")
    base, bf16 = grid(study, rounds=2), grid(study, rounds=2, overrides={"precision": "bf16", "epochs": 3})
    assert [s.name for s in base] == [s.name for s in bf16]
    assert all(o.config == replace(b.config, precision="bf16", epochs=3) for b, o in zip(base, bf16))


def test_records_from_before_a_new_config_field_still_resume(tiny_study, tmp_path):
    specs = grid(tiny_study)[:2]
    run_study(tiny_study, tmp_path, specs, DRY)
    config = tmp_path / specs[0].name / "config.json"
    recorded = json.loads(config.read_text())
    del recorded["train_config"]["precision"]          # as written before `precision` existed
    config.write_text(json.dumps(recorded))
    assert run_study(tiny_study, tmp_path, specs, DRY)["skipped"] == 2
    # Before `encoder` existed every run used the padded one (tuning's base): it still resumes ...
    assert specs[0].config.encoder == "padded"
    del recorded["train_config"]["encoder"]
    config.write_text(json.dumps(recorded))
    assert run_study(tiny_study, tmp_path, specs, DRY)["skipped"] == 2
    # ... and is not the run of a grid with another encoder.
    pooled = [replace(s, config=replace(s.config, encoder="pooled")) for s in specs]
    with pytest.raises(ValueError, match="different config"):
        run_study(tiny_study, tmp_path, pooled, DRY)


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
    records = load_records(out)
    assert sorted(r["dir"].rsplit("/", 1)[1] for r in records) == sorted(s.name for s in specs)
    assert not list(out.glob("*.partial-*"))
    third = run_study(tiny_study, out, specs, DRY)
    assert third["completed"] == 0 and len(load_records(out)) == len(specs)
    run_dir = out / specs[0].name
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "metrics.jsonl", "final.json", "done",
                                                   "model.safetensors"}
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == specs[0].config.epochs


def test_changed_config_is_refused(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)
    run_study(tiny_study, tmp_path, specs[:1], DRY)
    changed = [replace(specs[0], config=replace(specs[0].config, lr=0.5))]
    with pytest.raises(ValueError, match="different config"):
        run_study(tiny_study, tmp_path, changed, DRY)


def _fake_records(study, accs):
    return [{"variant": "shared", "setting": study.main, "round": i,
             "train_config": study.settings[study.main].to_dict(),
             "final": {"test_acc": a, "test_digit_acc": None, "val_acc": a - 1, "parameters": 7,
                       "wall_seconds": 1.0}} for i, a in enumerate(accs)]


def test_aggregation_known_mean_std():
    study = Study.load("train/studies/best.toml")
    accs = [90.0, 92.0, 97.0]
    (row,) = aggregate(_fake_records(study, accs), study)
    assert row["rounds"] == 3 and row["test_acc_mean"] == pytest.approx(93.0)
    assert row["test_acc_std"] == pytest.approx(statistics.stdev(accs)) == pytest.approx(3.6056, abs=1e-4)
    assert row["val_acc_mean"] == pytest.approx(92.0) and row["test_digit_acc_mean"] is None
    assert mean_std([5.0]) == (5.0, None) and mean_std([None]) == (None, None)


def test_report_files(tiny_study, tmp_path):
    specs = grid(tiny_study)
    run_study(tiny_study, tmp_path / "runs", specs, DRY)
    files = write_report(tmp_path / "runs", tmp_path / "results", tiny_study)
    assert {f.name for f in files} >= {"summary.csv", "meta.json", "report.md"}
    assert any(f.suffix == ".png" and f.stat().st_size > 1000 for f in files)
    rows = list(csv.DictReader(open(tmp_path / "results" / "summary.csv")))
    assert len(rows) == len(tiny_study.settings) * len(tiny_study.models)
    assert {"variant", "optimizer", "augmentation", "rounds", "test_acc_mean", "test_acc_std"} <= set(rows[0])
    assert all(int(r["rounds"]) == tiny_study.rounds for r in rows)
    meta = json.loads((tmp_path / "results" / "meta.json").read_text())
    assert meta["runs"] == len(specs) and meta["wall_seconds"] > 0
    assert meta["machines"][0]["cpu"] and meta["run_commits"]  # where the runs trained, recorded at run time
    assert "Complete: every cell" in (tmp_path / "results" / "report.md").read_text()


def test_cli_study_dry_run(tmp_path):
    result = CliRunner().invoke(app, ["study", "--preset", "seed2020", "--dry-run", "--only", "shared_aux",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "results" / "summary.csv")))
    assert [r["variant"] for r in rows] == ["shared_aux"] * 4
    assert "2020 report" in (tmp_path / "results" / "report.md").read_text()
    again = CliRunner().invoke(app, ["study", "--preset", "seed2020", "--dry-run", "--only", "shared_aux",
                                     "--out", str(tmp_path)])
    assert again.exit_code == 0 and "8 already finished" in again.output


def test_cli_study_errors(tmp_path):
    result = CliRunner().invoke(app, ["study", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "nope.toml" in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "study.toml" in result.output
    result = CliRunner().invoke(app, ["study", "--preset", "best", "--dry-run", "--set", "precision=fp8",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "precision='fp8'" in result.output
