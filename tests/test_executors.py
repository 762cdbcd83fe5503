"""Executors: wherever runs train, the driver alone writes their records; no process outlives a
study."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from digitpair.lab import records
from digitpair.lab.executors import Callbacks, Local, ProcessPool
from digitpair.lab.study import Study, dry_run_study, grid, run_study

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process table from /proc"
)


@pytest.fixture
def tiny_study():
    study = dry_run_study(Study.load("train/studies/tuning.toml"))
    return replace(
        study, variants=("simple_cnn", "shared"), settings=dict(list(study.settings.items())[:2])
    )


def metrics(out: Path) -> dict:
    """Run name -> its final metrics, minus the wall time (the only field that depends on when)."""
    return {
        r.name: {k: v for k, v in dataclasses.asdict(r.metrics).items() if k != "wall_seconds"}
        for r in records.load(out)
    }


def test_the_pool_records_what_one_process_records(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)[:2]
    run_study(tiny_study, tmp_path / "local", specs, Local(dry_run=True))
    result = run_study(tiny_study, tmp_path / "pool", specs, ProcessPool(2, dry_run=True))
    assert result["completed"] == len(specs) and not result["failed"]
    assert metrics(tmp_path / "pool") == metrics(tmp_path / "local") and len(
        metrics(tmp_path / "local")
    ) == len(specs)


def test_a_failed_run_is_reported_never_recorded(tiny_study, tmp_path):
    specs = grid(tiny_study, rounds=1)
    # A valid config the synthetic data can't serve: 1000 pairs of its 600 training images.
    broken = replace(specs[0], config=replace(specs[0].config, n_pairs=1000))
    seen = []
    result = run_study(
        tiny_study,
        tmp_path,
        [broken, *specs[1:]],
        ProcessPool(2, dry_run=True),
        Callbacks(on_fail=lambda spec, why: seen.append((spec.name, why))),
    )
    assert result["failed"] == [broken.name] and [name for name, _ in seen] == [broken.name]
    assert (
        seen[0][1].startswith("ValueError: cannot draw 1000 pairs") and "\n" not in seen[0][1]
    )  # one line
    assert not (tmp_path / broken.name).exists() and result["completed"] == len(specs) - 1


def test_interrupted_study_resumes_without_loss_or_duplicates(tiny_study, tmp_path):
    specs = grid(tiny_study)

    def stop_after_two(spec, final):
        if len(records.load(tmp_path)) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(
            tiny_study, tmp_path, specs, Local(dry_run=True), Callbacks(on_finish=stop_after_two)
        )
    assert len(records.load(tmp_path)) == 2
    again = run_study(tiny_study, tmp_path, specs, Local(dry_run=True))
    assert (again["skipped"], again["completed"]) == (2, len(specs) - 2)
    assert sorted(metrics(tmp_path)) == sorted(s.name for s in specs)
    # Both invocations are on record, the interrupted one too: a study's wall time is their sum.
    invocations = records.read_invocations(tmp_path)
    assert [(i["interrupted"], i["completed"], i["ended"]) for i in invocations] == [
        (True, 2, True),
        (False, len(specs) - 2, True),
    ]
    assert sorted(r.provenance.invocation for r in records.load(tmp_path)) == sorted(
        [invocations[0]["invocation"]] * 2 + [invocations[1]["invocation"]] * (len(specs) - 2)
    )


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _slow_study(out: Path, **popen) -> tuple[subprocess.Popen, set[int]]:
    """A 2-worker dry-run study whose runs take minutes; returns once both workers train."""
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitpair.lab.cli",
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--only",
            "shared",
            "--workers",
            "2",
            "--set",
            "epochs=100000",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers = {
            p
            for p in _descendants(driver.pid)
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
        }
        # A worker that has loaded torch and the data has a few threads running; wait for both.
        if len(workers) == 2 and all(
            len(list(Path(f"/proc/{p}/task").iterdir())) > 2 for p in workers
        ):
            break
        time.sleep(0.2)
    else:
        driver.kill()
        pytest.fail("the workers did not start")
    time.sleep(2)  # into their first runs
    return driver, _descendants(driver.pid)


def _gone_within(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


@linux_only
def test_killing_the_driver_leaves_no_process_behind(tmp_path):
    driver, family = _slow_study(tmp_path)
    assert len(family) >= 2
    driver.kill()  # SIGKILL to the main process only, as `kill -9 PID` would
    driver.wait()
    assert _gone_within(family, 10) == set()
    assert not [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]  # no worker wrote anything


def _as_a_foreground_job() -> None:
    # A command started in the background of a shell without job control (`pytest ... &`, nohup)
    # inherits SIGINT ignored (POSIX), and so would the study it starts: Ctrl-C is meant for
    # foreground jobs only. The study under test is one, whoever started the tests.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@linux_only
def test_ctrl_c_stops_the_whole_study(tmp_path):
    driver, family = _slow_study(tmp_path, start_new_session=True, preexec_fn=_as_a_foreground_job)
    os.killpg(
        driver.pid, signal.SIGINT
    )  # what a terminal's Ctrl-C sends: the whole foreground group
    try:
        output, _ = driver.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # stop the study rather than leave it training for nobody
        os.killpg(driver.pid, signal.SIGKILL)
        pytest.fail("the study went on 30 s after Ctrl-C:\n" + driver.communicate()[0][-2000:])
    assert driver.returncode == 130 and "interrupted" in output and "Traceback" not in output, (
        output
    )
    assert _gone_within(family, 10) == set()
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert all((p / "done").is_file() for p in runs)  # only finished runs, no partial folders


@linux_only
def test_a_study_killed_with_its_process_group_is_on_record_and_the_rerun_accounts_for_every_run(
    tmp_path,
):
    """kill -9 of the whole group (driver and workers) mid-study, then the same command again: the
    log holds both invocations, the killed one without an end, and every run names one of them."""
    from typer.testing import CliRunner

    from digitpair.lab.cli import app

    # 6 runs of a second or two each: the kill comes mid-study.
    args = [
        "study",
        "--preset",
        "best",
        "--dry-run",
        "--only",
        "shared_aux",
        "--set",
        "epochs=20",
        "--out",
        str(tmp_path),
    ]
    driver = subprocess.Popen(
        [sys.executable, "-m", "digitpair.lab.cli", *args, "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not records.load(runs):
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    killed = records.load(runs)
    [started] = records.read_invocations(runs)
    assert killed and not started["ended"] and started["to_train"] > len(killed)
    assert {r.provenance.invocation for r in killed} == {started["invocation"]}

    rerun = CliRunner().invoke(app, args)
    assert rerun.exit_code == 0 and "Traceback" not in rerun.output, rerun.output
    first, second = records.read_invocations(runs)
    every = records.load(runs)
    assert (first["invocation"], first["ended"], second["ended"]) == (
        started["invocation"],
        False,
        True,
    )
    assert second["completed"] == len(every) - len(killed) == started["to_train"] - len(killed)
    assert sorted(r.provenance.invocation for r in every) == sorted(
        [first["invocation"]] * len(killed) + [second["invocation"]] * second["completed"]
    )
    meta = json.loads((tmp_path / "results" / "meta.json").read_text())
    assert (
        meta["invocations"],
        meta["invocations_without_end"],
        meta["runs_without_invocation"],
        meta["runs_outside_invocations"],
    ) == (2, 1, 0, [])
    assert meta["without_end_seconds_at_least"] > 0
    assert (
        "(1 of them recorded no end: killed, or still running"
        in (tmp_path / "results" / "report.md").read_text()
    )


def test_a_torn_invocation_line_damages_only_itself(tmp_path):
    records.log_invocation(tmp_path, {"invocation": "a", "started_at": records.now()})
    with open(tmp_path / records.INVOCATIONS, "a") as f:
        f.write('{"invocation": "b", "star')  # a power loss mid-write
    records.log_invocation(tmp_path, {"invocation": "c", "started_at": records.now()})
    records.log_invocation(
        tmp_path, {"invocation": "c", "wall_seconds": 1.0, "finished_at": records.now()}
    )
    assert [(i["invocation"], i["ended"]) for i in records.read_invocations(tmp_path)] == [
        ("a", False),
        ("c", True),
    ]
