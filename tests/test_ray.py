"""The Ray executor on a local Ray instance: the same records as training here, the same resume.
Skipped without Ray (`pip install -e ".[ray]"`); CI installs it."""

import json
from dataclasses import replace

import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from digitpair.lab import records  # noqa: E402
from digitpair.lab.cli import app  # noqa: E402
from digitpair.lab.executors import Callbacks, Local, RayCluster  # noqa: E402
from digitpair.lab.study import Study, dry_run_study, grid, run_study  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def tiny_study():
    study = dry_run_study(Study.load("train/studies/tuning.toml"))
    return replace(
        study, variants=("simple_cnn", "shared"), settings=dict(list(study.settings.items())[:2])
    )


def test_ray_writes_the_records_this_process_writes(local_ray, tiny_study, tmp_path):
    """Same seeds, same threads per run -> the same record, whoever trained it (the process pool is
    held to the same standard against Local in test_executors.py)."""
    specs = grid(tiny_study, rounds=1)[:3]
    run_study(tiny_study, tmp_path / "local", specs, Local(dry_run=True, threads=1))
    result = run_study(tiny_study, tmp_path / "ray", specs, RayCluster(dry_run=True))
    assert result["completed"] == len(specs) and not result["failed"]
    for spec in specs:
        here, there = tmp_path / "local" / spec.name, tmp_path / "ray" / spec.name
        for name in (
            "config.json",
            "model.safetensors",
        ):  # config.json records the weights' SHA-256
            assert (here / name).read_bytes() == (there / name).read_bytes(), (spec.name, name)
        # Where and when it trained (provenance) and how long it took differ; every metric is equal.
        final = [
            {
                k: v
                for k, v in json.loads((d / "final.json").read_text()).items()
                if k not in ("wall_seconds", "provenance")
            }
            for d in (here, there)
        ]
        assert final[0] == final[1]
    invocation = json.loads((tmp_path / "ray" / "invocations.jsonl").read_text().splitlines()[-1])
    assert (
        invocation["executor"] == "ray"
        and invocation["cluster"]["CPU"] == 2
        and invocation["workers"] == 2
    )


def test_interrupted_ray_study_resumes(local_ray, tiny_study, tmp_path):
    specs = grid(tiny_study)[:4]

    def stop_after_two(spec, metrics):
        if len(records.load(tmp_path)) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(
            tiny_study,
            tmp_path,
            specs,
            RayCluster(dry_run=True),
            Callbacks(on_finish=stop_after_two),
        )
    assert len(records.load(tmp_path)) == 2  # the runs in flight were cancelled, not recorded
    again = run_study(tiny_study, tmp_path, specs, RayCluster(dry_run=True))
    assert (again["skipped"], again["completed"]) == (2, len(specs) - 2)
    assert sorted(r.name for r in records.load(tmp_path)) == sorted(s.name for s in specs)


def test_a_failing_ray_task_is_reported_never_recorded(local_ray, tiny_study, tmp_path):
    spec = grid(tiny_study, rounds=1)[0]
    # A valid config the synthetic data can't serve: 1000 pairs of its 600 training images.
    broken = replace(spec, config=replace(spec.config, n_pairs=1000))
    seen, why = [], []
    result = run_study(
        tiny_study,
        tmp_path,
        [broken],
        RayCluster(dry_run=True),
        Callbacks(on_fail=lambda s, reason: (seen.append(s.name), why.append(reason))),
    )
    assert result["failed"] == seen == [broken.name] and not (tmp_path / broken.name).exists()
    assert (
        why[0].startswith("ValueError: cannot draw 1000 pairs") and "\n" not in why[0]
    )  # one line


def test_cli_study_on_ray(local_ray, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--setting",
            "recipe",
            "--only",
            "shared",
            "--executor",
            "ray",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "on Ray (1 CPU, 0 GPU per run)" in result.output
    assert sum(line.startswith("recipe-shared-r0") for line in result.output.splitlines()) == 2
    assert (tmp_path / "results" / "report.md").is_file()
