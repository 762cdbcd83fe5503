"""A study: a TOML file naming settings x variants x rounds, run into one record folder per run.

Layout of a study's output folder (default `train/runs/<study>/`):

    study.toml                      the study file, copied, so the folder explains itself
    <setting>-<model>-r<round>/     one run
        config.json                 variant, study, setting, round, seeds and the full RunConfig
        metrics.jsonl               one line per epoch
        final.json                  selected epoch, val/test metrics, parameters, wall time
        model.safetensors           the selected weights (not committed: see .gitignore)
        done                        written last: a run without it is not finished

A run is written into `<name>.partial-<pid>/` and renamed into place in one `os.rename`, so a
kill at any moment (even SIGKILL) leaves either a finished run or a partial folder that the
next invocation deletes and redoes. Reruns skip finished runs.

Seeds derive from the grid coordinates: data_seed = round (every setting and variant of a
round sees the same pairs, so comparisons are paired), init_seed = a stable hash of
(setting, model, round). Any single run can be re-run alone from its config.json.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
import tomllib
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .weights import save_variant
from .models import VARIANTS
from .training import RunConfig, RunResult

DONE = "done"


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    rounds: int
    main: str                             # the headline setting (Fig. 1; exported weights)
    models: tuple[str, ...]
    settings: dict[str, RunConfig]        # name -> config template (seeds filled per run)
    comparisons: dict[str, list[str]]     # "augmentation" -> ["adam_none", "adam_seed"], ...
    reference: dict                       # the 2020 report's published numbers, if any
    source: str                           # the TOML text

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Study":
        path = Path(path)
        text = path.read_text()
        try:
            raw = tomllib.loads(text)
            meta, base = raw["study"], raw.get("base", {})
            settings = {name: RunConfig.from_dict({**base, **over, "data_seed": 0, "init_seed": 1})
                        for name, over in raw["settings"].items()}
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a valid study file ({type(e).__name__}: {e})") from None
        models = tuple(meta.get("models", list(VARIANTS)))
        comparisons = raw.get("comparisons", {})
        unknown = [s for names in comparisons.values() for s in names if s not in settings]
        if meta["main"] not in settings or unknown or set(models) - set(VARIANTS):
            raise ValueError(f"{path}: comparisons/main name unknown settings or models")
        return cls(name=meta["name"], description=meta.get("description", ""), rounds=meta["rounds"],
                   main=meta["main"], models=models, settings=settings, comparisons=comparisons,
                   reference=raw.get("reference", {}), source=text)


@dataclass(frozen=True)
class RunSpec:
    study: str
    setting: str
    round: int
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.setting}-{self.config.variant}-r{self.round:02d}"

    def record(self) -> dict:
        return {"variant": self.config.variant, "study": self.study, "setting": self.setting,
                "round": self.round, "train_config": self.config.to_dict()}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def git_commit() -> str:
    # A copy of the tree sent elsewhere (e.g. to a GPU machine) names its commit here: a .git
    # there, if any, need not match the files that were sent.
    if os.environ.get("DIGITPAIR_COMMIT"):
        return os.environ["DIGITPAIR_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def init_seed(setting: str, model: str, round_: int) -> int:
    # crc32 is stable across processes and Python versions (unlike hash()); the offset keeps it
    # away from the small data seeds.
    return 10_000 + zlib.crc32(f"{setting}/{model}/{round_}".encode()) % 1_000_000_000


def grid(study: Study, rounds: int | None = None, only: str | None = None,
         setting: str | None = None, overrides: dict | None = None) -> list[RunSpec]:
    """Every run of the study, round-major, so a partial study has complete early rounds.

    `overrides` sets RunConfig fields in every run (e.g. {"epochs": 5} for a quick look)."""
    specs = []
    for r in range(rounds if rounds is not None else study.rounds):
        for name, template in study.settings.items():
            if setting is not None and name != setting:
                continue
            for model in study.models:
                if only is not None and model != only:
                    continue
                cfg = replace(template, variant=model, data_seed=r, init_seed=init_seed(name, model, r),
                              **(overrides or {}))
                specs.append(RunSpec(study.name, name, r, cfg))
    return specs


def is_done(run_dir: Path) -> bool:
    return (run_dir / DONE).is_file()


def clean_partials(out: Path) -> int:
    """Remove what killed runs left behind; returns how many."""
    stale = [p for p in out.glob("*.partial-*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def check_config(run_dir: Path, spec: RunSpec) -> None:
    """A finished run must be the run this grid asks for, or the records would mix two studies."""
    recorded = json.loads((run_dir / "config.json").read_text())
    if RunConfig.from_record(recorded["train_config"]) != spec.config:
        raise ValueError(f"{run_dir} was recorded with a different config; "
                         f"use another output folder (--out) for a changed study")


def write_run(out: Path, spec: RunSpec, result: RunResult) -> Path:
    """Write all records into a partial folder, then rename it into place (atomic on POSIX)."""
    final_dir = out / spec.name
    tmp = out / f"{spec.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_variant(result.model, spec.config.variant, tmp, {k: v for k, v in spec.record().items() if k != "variant"})
    with open(tmp / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in result.history)
    (tmp / "final.json").write_text(json.dumps(result.final, indent=2) + "\n")
    (tmp / DONE).write_text("")
    for path in tmp.iterdir():          # durable before the rename makes it visible
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if final_dir.exists():              # an unfinished leftover without `done`
        shutil.rmtree(final_dir)
    os.rename(tmp, final_dir)
    return final_dir


def load_records(out: str | os.PathLike) -> list[dict]:
    """The finished runs of a study folder: config.json + final.json merged, one dict per run."""
    records = []
    for run_dir in sorted(Path(out).iterdir()):
        if run_dir.is_dir() and is_done(run_dir):
            rec = json.loads((run_dir / "config.json").read_text())
            rec["final"] = json.loads((run_dir / "final.json").read_text())
            rec["dir"] = str(run_dir)
            records.append(rec)
    return records


# --- running a grid ---------------------------------------------------------------------------

def dry_run_study(study: Study) -> Study:
    """The same study on tiny synthetic data: 2 rounds, 2 epochs, 64 pairs; seconds, not hours."""
    tiny = dict(n_pairs=64, batch_size=16, epochs=2)
    settings = {k: replace(v, **tiny, val_pairs=16 if v.val_pairs else 0) for k, v in study.settings.items()}
    return replace(study, rounds=min(2, study.rounds), settings=settings)


def run_study(study: Study, out: Path, specs: list[RunSpec], executor=None, callbacks=None) -> dict:
    """Train every unfinished run of `specs` with `executor` (see digitpair/executors.py; default:
    one after the other in this process, on real MNIST) and write each run's record here, in the
    driver, as its result comes back. Returns {"completed", "failed" (names), "skipped", "wall_seconds"}.

    Only scheduling and records: what to show is the caller's, through `callbacks`."""
    from .executors import Callbacks, Local, Trained

    executor = executor or Local()
    cb = callbacks or Callbacks()
    t0 = time.perf_counter()
    commit = git_commit()   # the code these runs are trained with, read before anything is written
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.toml").write_text(study.source)
    removed = clean_partials(out)
    todo = []
    for spec in specs:
        if is_done(out / spec.name):
            check_config(out / spec.name, spec)
        else:
            todo.append(spec)
    skipped = len(specs) - len(todo)
    cb.on_plan(todo, skipped, removed)
    completed, failed, machines = [], [], []

    def on_trained(trained: Trained) -> None:
        write_run(out, trained.spec, trained.result)
        completed.append(trained.spec.name)
        if trained.provenance["machine"] not in machines:
            machines.append(trained.provenance["machine"])
        cb.on_finish(trained.spec, trained.result.final)

    def on_fail(spec: RunSpec, why: str) -> None:
        failed.append(spec.name)
        cb.on_fail(spec, why)

    if todo:
        executor.execute(todo, commit, on_trained, replace(cb, on_fail=on_fail))
    wall = time.perf_counter() - t0
    with open(out / "invocations.jsonl", "a") as f:
        f.write(json.dumps({"wall_seconds": wall, "completed": len(completed), "failed": len(failed),
                            "skipped": skipped, **executor.describe(),
                            "commit": commit, "machine": machine(), "run_machines": machines,
                            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return {"completed": len(completed), "failed": failed, "skipped": skipped, "wall_seconds": wall}
