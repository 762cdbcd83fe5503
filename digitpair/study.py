"""A study: a TOML file naming settings x variants x rounds, run into one record folder per run.

The study folder's layout and the run records are digitpair/records.py's. One folder holds one
study definition: a second invocation may extend it (more rounds, variants or settings), never
change it, and only one invocation trains into a folder at a time (`records.lock`).

Seeds derive from the grid coordinates: data_seed = round (every setting and variant of a
round sees the same pairs, so comparisons are paired), init_seed = a stable hash of
(setting, variant, round). Any single run can be re-run alone from its recorded config.

Test pairs are sealed: only a study whose file says `final = true` scores them (once per run,
after selection). Exploratory and tuning studies decide on validation pairs alone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import tomllib
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from queue import Empty

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import records
from .data import MNIST, synthetic_mnist
from .models import DEFAULT_HEAD, VARIANTS
from .records import RunSpec, git_commit, machine
from .training import RunConfig, train_run


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    final: bool                           # scores the test pairs; exploratory and tuning studies don't
    rounds: int
    main: str                             # the headline setting (Fig. 1; exported weights)
    models: tuple[str, ...]
    settings: dict[str, RunConfig]        # name -> config template (seeds filled per run)
    comparisons: dict[str, list[str]]     # "augmentation" -> ["adam_none", "adam_seed"], ...
    reference: dict                       # the 2020 report's published numbers, if any
    source: str                           # the TOML text

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Study":
        return cls.parse(Path(path).read_text(), path)

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike = "<study>") -> "Study":
        try:
            raw = tomllib.loads(text)
            meta, base = raw["study"], raw.get("base", {})
            final = meta.get("final")
            if not isinstance(final, bool):
                raise TypeError("[study] needs final = true (scores the test pairs) or false")
            settings = {name: RunConfig.from_dict({"test": final, **base, **over, "data_seed": 0, "init_seed": 1})
                        for name, over in raw["settings"].items()}
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a valid study file ({type(e).__name__}: {e})") from None
        models = tuple(meta.get("models", list(VARIANTS)))
        comparisons = raw.get("comparisons", {})
        unknown = [s for names in comparisons.values() for s in names if s not in settings]
        if meta["main"] not in settings or unknown or set(models) - set(VARIANTS):
            raise ValueError(f"{path}: comparisons/main name unknown settings or models")
        if not final and any(c.test for c in settings.values()):
            raise ValueError(f"{path}: test = true in a study that is not final: only a final study "
                             "scores the test pairs (set final = true once the choices are made on validation)")
        return cls(name=meta["name"], description=meta.get("description", ""), final=final, rounds=meta["rounds"],
                   main=meta["main"], models=models, settings=settings, comparisons=comparisons,
                   reference=raw.get("reference", {}), source=text)


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
                # simple_cnn has no pair head (VARIANTS[...].heads): it compares its digits in code
                # in every setting, so a setting's head applies to the four pair networks only.
                head = template.head if template.head in VARIANTS[model].heads else DEFAULT_HEAD
                cfg = replace(template, variant=model, head=head, data_seed=r,
                              init_seed=init_seed(name, model, r), **(overrides or {}))
                specs.append(RunSpec(study.name, name, r, cfg))
    return specs


def check_folder(study: Study, out: Path, specs: list[RunSpec], finished: dict[str, records.RunRecord]) -> None:
    """One folder, one study: refuse a study definition or a run config that differs from what the
    folder holds (a new setting, variant or round extends the study and is welcome)."""
    if (out / "study.toml").is_file():
        # The definitions as written (a dry run or an override changes the runs, not the file).
        held, study = Study.load(out / "study.toml"), Study.parse(study.source)
        changed = [f"{what} {a!r} in the folder, {b!r} now"
                   for what, a, b in (("name", held.name, study.name), ("final", held.final, study.final),
                                      ("main setting", held.main, study.main)) if a != b]
        changed += [f"setting {name!r}: {records.differences(cfg.to_dict(), study.settings[name].to_dict())}"
                    for name, cfg in held.settings.items() if name in study.settings and cfg != study.settings[name]]
        changed += [f"setting {name!r} is gone" for name in held.settings if name not in study.settings]
        changed += [f"variant {name!r} is gone" for name in held.models if name not in study.models]
        if changed:
            raise ValueError(f"{out} holds another definition of the study: {'; '.join(changed)}. "
                             "A study folder holds one study; use another output folder (--out)")
    # Runs of one setting share everything but the variant and the seeds.
    held = {r.setting: r for r in finished.values()}
    for spec in specs:
        if spec.name in finished:
            records.check_config(finished[spec.name], spec)
        elif spec.setting in held:
            other = held[spec.setting]
            recorded = replace(other.config, variant=spec.config.variant, data_seed=spec.config.data_seed,
                               init_seed=spec.config.init_seed)
            records.check_config(replace(other, round=spec.round, config=recorded), spec)


# --- running a grid ---------------------------------------------------------------------------

_MNIST = None   # per worker process: loaded once, shared by all the runs it trains


def _init_worker(data_dir, dry_run: bool, threads: int) -> None:
    global _MNIST
    torch.set_num_threads(threads)
    _MNIST = synthetic_mnist() if dry_run else MNIST(data_dir)


def train_and_write(spec: RunSpec, out: Path, commit: str, on_epoch=None) -> dict:
    """Train one run and write its record, provenance read here, in the process that trains."""
    started = records.now()
    result = train_run(spec.config, _MNIST, on_epoch=on_epoch)
    records.write(out, spec, result, records.provenance(commit, started, result.final["device"]))
    return result.final


def _run_one(spec: RunSpec, out: Path, commit: str, events=None) -> tuple[str, dict]:
    on_epoch = None
    if events is not None:
        on_epoch = lambda r: events.put((spec.name, r["epoch"], spec.config.epochs))  # noqa: E731
    return spec.name, train_and_write(spec, out, commit, on_epoch)


def dry_run_study(study: Study) -> Study:
    """The same study on tiny synthetic data: 2 rounds, 2 epochs, 64 pairs; seconds, not hours."""
    tiny = dict(n_pairs=64, batch_size=16, epochs=2)
    settings = {k: replace(v, **tiny, val_pairs=16 if v.val_pairs else 0) for k, v in study.settings.items()}
    return replace(study, rounds=min(2, study.rounds), settings=settings)


def run_study(study: Study, out: Path, specs: list[RunSpec], workers: int = 1, data_dir=None,
              dry_run: bool = False, console=None) -> dict:
    """Train every unfinished run of `specs` into `out`; returns {"completed", "skipped", "wall_seconds"}."""
    with records.lock(out):
        return _run_study(study, out, specs, workers, data_dir, dry_run, console or Console())


def _run_study(study: Study, out: Path, specs: list[RunSpec], workers: int, data_dir, dry_run: bool,
               console) -> dict:
    t0 = time.perf_counter()
    commit = git_commit()   # the code these runs are trained with, read before anything is written
    if not study.final and any(s.config.test for s in specs):
        raise ValueError(f"study {study.name!r} is not final: its runs may not score the test pairs "
                         "(test = true needs final = true in the study file)")
    finished = {r.name: r for r in records.load(out)}
    check_folder(study, out, specs, finished)
    (out / "study.toml").write_text(study.source)
    if n := records.clean_partials(out):
        console.print(f"removed {n} partial run folder(s) left by an interrupted invocation")
    todo = [spec for spec in specs if spec.name not in finished]
    skipped = len(specs) - len(todo)
    console.print(f"[bold]{study.name}[/bold]: {len(specs)} runs, {skipped} already finished, "
                  f"{len(todo)} to train with {workers} worker(s) -> {out}")

    def log(name: str, final: dict) -> None:
        parts = [f"{k} {final[key]:5.1f}" for k, key in
                 (("val", "val_acc"), ("test", "test_acc"), ("digits", "test_digit_acc")) if final[key] is not None]
        console.print(f"{name:<34} {'  '.join(parts)}  epoch {final['selected_epoch']:>3}  "
                      f"{final['wall_seconds']:5.1f}s")

    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    threads = max(1, (os.cpu_count() or 1) // workers)
    with Progress(*columns, console=console) as bar:
        total = bar.add_task("runs", total=len(specs), completed=skipped)
        current: dict[str, int] = {}

        def on_epoch(name: str, epoch: int, epochs: int) -> None:
            if name not in current:
                current[name] = bar.add_task(name, total=epochs)
            bar.update(current[name], completed=epoch)

        def finish(name: str, final: dict) -> None:
            if name in current:
                bar.remove_task(current.pop(name))
            bar.advance(total)
            log(name, final)

        if workers == 1:
            _init_worker(data_dir, dry_run, threads)
            for spec in todo:
                final = train_and_write(spec, out, commit,
                                        lambda r, s=spec: on_epoch(s.name, r["epoch"], s.config.epochs))
                finish(spec.name, final)
        elif todo:
            ctx = mp.get_context("spawn")   # fresh interpreters: no forked torch thread pools
            with ctx.Manager() as manager, ProcessPoolExecutor(
                    workers, mp_context=ctx, initializer=_init_worker,
                    initargs=(data_dir, dry_run, threads)) as pool:
                events = manager.Queue()
                pending = {pool.submit(_run_one, spec, out, commit, events) for spec in todo}
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    try:
                        while True:
                            on_epoch(*events.get_nowait())
                    except Empty:
                        pass
                    for fut in done:
                        finish(*fut.result())
    wall = time.perf_counter() - t0
    with open(out / "invocations.jsonl", "a") as f:
        f.write(json.dumps({"wall_seconds": wall, "completed": len(todo), "skipped": skipped,
                            "workers": workers, "threads_per_worker": threads,
                            "commit": commit, "machine": machine(),
                            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return {"completed": len(todo), "skipped": skipped, "wall_seconds": wall}
