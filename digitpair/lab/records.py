"""Run records: one typed record per run, and the one place that knows how records are stored.

A study folder (default `train/runs/<study>/`, digitpair/lab/study.py's `output_folders`):

    study.toml                      the study definition this folder belongs to (one per folder)
    invocations.jsonl               two lines per study command, joined by its id: one as it starts
                                    (commit, machine, executor, runs to train; the diff of the
                                    uncommitted code a final study trains from under
                                    --allow-dirty), one as it ends (wall time, runs completed and
                                    failed); a command killed on the way has the first only, and
                                    each run's provenance names its command
    runs.jsonl.gz                   the packed finished runs, one row per run (`RunRecord.to_dict`,
                                    epoch history included): what the repository keeps
    .lock                           locked (`try_lock`) by the invocation training into the folder
    <setting>-<variant>-r<round>/   one run as a study writes it (the working format, not committed)
        config.json                 variant, encoder, study, setting, round and the RunConfig
        final.json                  final metrics and the run's provenance
        metrics.jsonl               one line per epoch
        model.safetensors           the selected weights
        done                        written last: a run without it is not finished

A run is written into `<name>.partial-<pid>/` and renamed into place in one `os.rename`, so a
kill at any moment (even SIGKILL) leaves either a finished run or a partial folder that the
next invocation deletes and redoes. A write that fails (a read-only folder, a full disk) is a
`WriteError` naming the folder and the cause, and removes the partial folder there and then.
`pack` folds the finished runs into `runs.jsonl.gz`; a packed run counts as finished, so a packed
study resumes and extends like an unpacked one.

A study's report folder (default `train/results/<study>/`, digitpair/lab/study.py's `report_folder`;
written by digitpair/lab/report.py) holds `summary.csv`, one `Summary` row per setting and variant:
written by `write_summary`, read back, typed, by `read_summary` wherever it is read (the README's
tables, the app's About panel).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os
import platform
import re
import shutil
import typing
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from safetensors import SafetensorError

from ..core import typed
from ..core.config import UNKNOWN, Metrics, Provenance, RunConfig
from ..core.weights import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    WeightsError,
    load_weights,
    read_config,
    save_variant,
)
from .provenance import now
from .training import RunResult

DONE = "done"
PACK = "runs.jsonl.gz"
LOCK = ".lock"
PARTIAL = (
    ".partial-"  # <name>.partial-<pid>: a run being written; never a finished run, even with `done`
)
INVOCATIONS = "invocations.jsonl"
SUMMARY = "summary.csv"
Unknown = Literal["unknown"]  # UNKNOWN as a type: what a file does not record


@dataclass(frozen=True)
class RunSpec:
    """One cell of a study's grid: which run, with which config."""

    study: str
    setting: str
    round: int
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.setting}-{self.config.variant}-r{self.round:02d}"


@dataclass(frozen=True)
class RunRecord:
    study: str
    setting: str
    round: int
    config: RunConfig
    metrics: Metrics
    provenance: Provenance
    history: tuple[dict, ...]  # one dict per epoch: train_loss, train_acc, lr, val_acc, ...

    @property
    def variant(self) -> str:
        return self.config.variant

    @property
    def spec(self) -> RunSpec:
        return RunSpec(self.study, self.setting, self.round, self.config)

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict:
        return {
            "study": self.study,
            "setting": self.setting,
            "round": self.round,
            "config": self.config.to_dict(),
            "metrics": self.metrics.to_dict(),
            "provenance": self.provenance.to_dict(),
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        # Every config field must be recorded: a default filled in here would be a guess about an
        # older run (train/migrate_records.py adds what older records lacked, once, in the open).
        missing = {f.name for f in dataclasses.fields(RunConfig)} - set(d["config"])
        if missing:
            raise ValueError(
                f"record {d['setting']}-r{d['round']:02d} of {d['study']!r} lacks config fields "
                f"{sorted(missing)}: migrate it (train/migrate_records.py)"
            )
        return cls(
            study=d["study"],
            setting=d["setting"],
            round=d["round"],
            config=RunConfig.from_dict(d["config"]),
            metrics=Metrics(**d["metrics"]),
            provenance=Provenance(**d["provenance"]),
            history=tuple(d["history"]),
        )


# --- writing ----------------------------------------------------------------------------------


class WriteError(RuntimeError):
    """A folder can't be written (read-only, full, no permission); the message names it and the
    cause."""


def _cause(e: OSError | SafetensorError) -> str:
    if isinstance(e, OSError):
        return e.strerror or str(e)
    # safetensors reports the OS error inside its own text: "... I/O error: No space left on device
    # (os error 28)"
    code = re.search(r"\(os error (\d+)\)", str(e))
    return os.strerror(int(code.group(1))) if code else str(e)


@contextmanager
def writing(folder: Path, what: str = "", partial: Path | None = None):
    """Turn a failed write under `folder` into a `WriteError` naming the folder and the cause,
    after removing `partial` (what the write had begun), so nothing half-written stays behind."""
    try:
        yield
    except (OSError, SafetensorError) as e:
        if partial is not None:
            shutil.rmtree(partial, ignore_errors=True)
        removed = f"; the partial {partial.name} was removed" if partial is not None else ""
        raise WriteError(
            f"can't write {what + ' in ' if what else 'to '}{folder}: {_cause(e)}{removed}"
        ) from None


# --- one run folder -----------------------------------------------------------------------------


def write(out: Path, spec: RunSpec, result: RunResult, prov: Provenance) -> Path:
    """Write a finished run into `out/<name>/`: a partial folder renamed into place (atomic on
    POSIX). A failed write raises `WriteError` and leaves no partial folder."""
    final_dir = out / spec.name
    tmp = out / f"{spec.name}{PARTIAL}{os.getpid()}"
    with writing(out, f"run {spec.name}", partial=tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        save_variant(
            result.model,
            spec.config.variant,
            tmp,
            study=spec.study,
            setting=spec.setting,
            round=spec.round,
            train_config=spec.config,
        )
        with open(tmp / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in result.history)
        final = {**result.metrics.to_dict(), "provenance": prov.to_dict()}
        (tmp / "final.json").write_text(json.dumps(final, indent=2) + "\n")
        (tmp / DONE).write_text("")
        for path in tmp.iterdir():  # durable before the rename makes it visible
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if final_dir.exists():  # an unfinished leftover without `done`
            shutil.rmtree(final_dir)
        os.rename(tmp, final_dir)
    return final_dir


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).is_file()


def read_run(run_dir: Path) -> RunRecord:
    try:
        config = read_config(run_dir / CONFIG_NAME)
    except (
        WeightsError
    ) as e:  # a ValueError, as a bad row of a pack is: the commands report it in one line
        raise ValueError(str(e)) from None
    final = json.loads((run_dir / "final.json").read_text())
    prov = final.pop("provenance")
    history = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line
    ]
    return RunRecord(
        study=config.study,
        setting=config.setting,
        round=config.round,
        config=config.train_config,
        metrics=Metrics(**final),
        provenance=Provenance(**prov),
        history=tuple(history),
    )


def weights_path(out: str | os.PathLike, record: RunRecord) -> Path:
    """Where a run's weights are, if this machine trained it (they are never packed or
    committed)."""
    return Path(out) / record.name / WEIGHTS_NAME


def load_model(out: str | os.PathLike, record: RunRecord):
    """The run's trained network, from `weights_path` (a WeightsError where it is missing)."""
    c = record.config
    return load_weights(weights_path(out, record), record.variant, c.encoder, c.head, c.members)


def clean_partials(out: Path) -> int:
    """Remove what killed runs left behind; returns how many."""
    stale = [p for p in out.glob(f"*{PARTIAL}*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


# --- a study folder -----------------------------------------------------------------------------


def load(out: str | os.PathLike) -> list[RunRecord]:
    """Every finished run of a study folder, packed or not, sorted by name."""
    out = Path(out)
    records = {}
    if (out / PACK).is_file():
        with gzip.open(out / PACK, "rt") as f:
            for line in f:
                rec = RunRecord.from_dict(json.loads(line))
                records[rec.name] = rec
    for run_dir in out.iterdir() if out.is_dir() else ():
        # A partial folder holds `done` just before its rename: a kill there leaves a
        # complete-looking
        # run that is not in place, which the next invocation deletes (`clean_partials`) and redoes.
        if (
            run_dir.name not in records
            and PARTIAL not in run_dir.name
            and run_dir.is_dir()
            and is_done(run_dir)
        ):
            records[run_dir.name] = read_run(run_dir)
    return [records[name] for name in sorted(records)]


def pack(out: str | os.PathLike) -> Path:
    """Fold every finished run into `runs.jsonl.gz` (deterministic bytes: same runs, same file).
    Run folders stay where they are: their weights are what `export` ships."""
    return write_pack(out, [r.to_dict() for r in load(out)])


def write_pack(out: str | os.PathLike, rows: list[dict]) -> Path:
    """`rows` (RunRecord.to_dict()s, sorted by run name) as `out/runs.jsonl.gz`, atomically."""
    out = Path(out)
    rows = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(rows.encode())
    tmp = out / f"{PACK}.tmp-{os.getpid()}"
    with writing(out, PACK, partial=tmp):
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, out / PACK)
    return out / PACK


def try_lock(f) -> bool:
    """Take an exclusive lock on the open file `f` without waiting; False if another process holds
    it. The operating system releases it when its holder dies, so a killed study never leaves the
    folder locked: flock on POSIX, a byte-range lock on Windows (which has no fcntl)."""
    try:
        import fcntl
    except ImportError:
        import msvcrt

        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def holder(f) -> str:
    """What the holder of the lock on `f` wrote about itself (Windows may refuse to read a locked
    byte)."""
    try:
        f.seek(0)
        return f.read().strip() or "pid unknown"
    except OSError:
        return "pid unknown"


@contextmanager
def lock(out: Path):
    """Hold the study folder for one invocation (`try_lock`)."""
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        f = open(out / LOCK, "a+")
    with f:
        if not try_lock(f):
            raise ValueError(
                f"{out} is in use by another study invocation ({holder(f)}); "
                "wait for it to finish, or use another output folder (--out)"
            )
        with writing(out):
            f.truncate(0)
            f.write(f"pid {os.getpid()} on {platform.node()}, since {now()}\n")
            f.flush()
        try:
            yield
        finally:
            f.truncate(0)


# --- the invocation log ------------------------------------------------------------------------


def new_invocation() -> str:
    """A study command's id: on its two lines of invocations.jsonl and in every run it records."""
    return uuid.uuid4().hex[:12]


def log_invocation(out: Path, line: dict) -> None:
    """Append `line` to `out/invocations.jsonl`, on disk (fsync) when this returns. A line a power
    loss tore is ended before the next one, so the damage stays in that line."""
    path = out / INVOCATIONS
    data = (json.dumps(line) + "\n").encode()
    with writing(out, INVOCATIONS):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size:
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def read_invocations(out: str | os.PathLike) -> list[dict]:
    """The study commands of a folder in the order they started, one dict each: a command's start
    and end lines merged (the end's fields over the start's), with `ended`: whether it wrote its
    end line (if not, it was killed, or is still running). Lines from before commands had ids are
    single end lines. A line that is not JSON (torn) is skipped: the runs of its command then name
    an invocation the log does not hold, and a report counts them as accounted for by none."""
    path = Path(out) / INVOCATIONS
    merged: dict = {}
    for n, text in enumerate(
        path.read_text(errors="replace").splitlines() if path.is_file() else ()
    ):
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            key = line.get("invocation", n)
            merged[key] = {**merged.get(key, {}), **line}
    return [{**line, "ended": "wall_seconds" in line} for line in merged.values()]


def timestamp(text: str) -> datetime | None:
    """A recorded time (`now()`'s format, or the local-offset one older invocation lines have);
    None for "unknown"."""
    return None if text == UNKNOWN else datetime.fromisoformat(text)


def check_config(record: RunRecord, spec: RunSpec) -> None:
    """A finished run must be the run the grid asks for, or the records would mix two studies."""
    recorded = {"study": record.study, **record.config.to_dict()}
    asked = {"study": spec.study, **spec.config.to_dict()}
    if recorded != asked:
        raise ValueError(
            f"run {spec.name} was recorded with a different config "
            f"({differences(recorded, asked)}); "
            f"use another output folder (--out) for a changed study"
        )


def differences(recorded: dict, asked: dict) -> str:
    """'epochs 15 recorded, 16 asked; ...' for the keys whose values differ."""
    return "; ".join(
        f"{k} {recorded.get(k)!r} recorded, {asked.get(k)!r} asked"
        for k in sorted(recorded.keys() | asked.keys())
        if recorded.get(k) != asked.get(k)
    )


# --- selection ----------------------------------------------------------------------------------


def select(
    records: list[RunRecord], setting: str | None = None, variant: str | None = None
) -> list[RunRecord]:
    """The records of one setting and/or variant, in round order."""
    return sorted(
        (
            r
            for r in records
            if (setting is None or r.setting == setting)
            and (variant is None or r.variant == variant)
        ),
        key=lambda r: r.round,
    )


# --- a study's summary (summary.csv) -------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One row of a study's summary.csv: a (setting, variant) cell, the config its runs share, and
    its numbers over its rounds: mean and sample std, None where no round measured it (a std also
    where one round gives none). Read back from a file, what it does not record (a column it lacks,
    an empty cell of a column that is written full) is UNKNOWN."""

    setting: str
    variant: str
    optimizer: str
    augmentation: str
    lr: float | Unknown
    epochs: int | Unknown
    encoder: str
    head: str
    precision: str
    members: int | Unknown
    rounds: int | Unknown
    test_acc_mean: float | None | Unknown
    test_acc_std: float | None | Unknown
    test_digit_acc_mean: float | None | Unknown
    test_digit_acc_std: float | None | Unknown
    val_acc_mean: float | None | Unknown
    val_acc_std: float | None | Unknown
    parameters: int | Unknown
    train_seconds_mean: float | Unknown


def write_summary(path: Path, rows: list[Summary]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[field.name for field in dataclasses.fields(Summary)])
        w.writeheader()
        for row in rows:
            # Full precision: whatever rounds these numbers (report.md, the README) rounds them
            # once.
            w.writerow({k: ("" if v is None else v) for k, v in dataclasses.asdict(row).items()})


def read_summary(path: str | os.PathLike) -> list[Summary]:
    """A summary.csv's rows, typed; a cell that is not of its column's type is a ValueError naming
    it."""
    with open(path, newline="") as f:
        return [
            _summary_row(cells, f"{path} line {n}")
            for n, cells in enumerate(csv.DictReader(f), start=2)
        ]


def _summary_row(cells: dict[str, str | None], where: str) -> Summary:
    values = {}
    for name, hint in typing.get_type_hints(Summary).items():
        text = cells.get(name)
        if text is None or (text == "" and type(None) not in typed.kinds(hint)):
            values[name] = UNKNOWN
        else:
            try:
                values[name] = typed.from_text(text, hint, name)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
    return Summary(**values)
