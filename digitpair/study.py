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
import os
import time
import tomllib
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from . import records
from .executors import Callbacks, Local, Trained
from .models import DEFAULT_HEAD, VARIANTS
from .records import RunSpec, git_commit, machine
from .training import RunConfig


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
    # Runs of one setting share everything but the variant, its head (simple_cnn has none to swap:
    # `grid`) and the seeds.
    held = {r.setting: r for r in finished.values()}
    for spec in specs:
        if spec.name in finished:
            records.check_config(finished[spec.name], spec)
        elif spec.setting in held:
            other = held[spec.setting]
            recorded = replace(other.config, variant=spec.config.variant, head=spec.config.head,
                               data_seed=spec.config.data_seed, init_seed=spec.config.init_seed)
            records.check_config(replace(other, round=spec.round, config=recorded), spec)


# --- running a grid ---------------------------------------------------------------------------

def dry_run_study(study: Study) -> Study:
    """The same study on tiny synthetic data: 2 rounds, 2 epochs, 64 pairs, ensembles of 2; seconds, not hours."""
    tiny = dict(n_pairs=64, batch_size=16, epochs=2)
    settings = {k: replace(v, **tiny, val_pairs=16 if v.val_pairs else 0, members=min(v.members, 2))
                for k, v in study.settings.items()}
    return replace(study, rounds=min(2, study.rounds), settings=settings)


def run_study(study: Study, out: Path, specs: list[RunSpec], executor=None, callbacks=None) -> dict:
    """Train every unfinished run of `specs` with `executor` (see digitpair/executors.py; default:
    one after the other in this process, on real MNIST) and write each run's record here, in the
    driver, as its result comes back. Returns {"completed", "failed" (names), "skipped", "wall_seconds"}.

    Only scheduling and records: what to show is the caller's, through `callbacks`. One
    invocation at a time per folder (`records.lock`)."""
    with records.lock(out):
        return _run_study(study, out, specs, executor, callbacks)


def _run_study(study: Study, out: Path, specs: list[RunSpec], executor, callbacks) -> dict:
    executor = executor or Local()
    cb = callbacks or Callbacks()
    t0 = time.perf_counter()
    commit = git_commit()   # the code these runs are trained with, read before anything is written
    if not study.final and any(s.config.test for s in specs):
        raise ValueError(f"study {study.name!r} is not final: its runs may not score the test pairs "
                         "(test = true needs final = true in the study file)")
    finished = {r.name: r for r in records.load(out)}
    check_folder(study, out, specs, finished)
    (out / "study.toml").write_text(study.source)
    removed = records.clean_partials(out)
    todo = [spec for spec in specs if spec.name not in finished]
    skipped = len(specs) - len(todo)
    cb.on_plan(todo, skipped, removed)
    completed, failed, machines = [], [], []

    def on_trained(trained: Trained) -> None:
        records.write(out, trained.spec, trained.result, trained.provenance)
        completed.append(trained.spec.name)
        if trained.provenance.machine not in machines:
            machines.append(trained.provenance.machine)
        cb.on_finish(trained.spec, trained.result.final)

    def on_fail(spec: RunSpec, why: str) -> None:
        failed.append(spec.name)
        cb.on_fail(spec, why)

    interrupted = True   # until execute returns: Ctrl-C (KeyboardInterrupt) or any error on the way out
    try:
        if todo:
            executor.execute(todo, commit, on_trained, replace(cb, on_fail=on_fail))
        interrupted = False
    finally:
        # Every invocation is recorded, an interrupted one too: the study's wall time is the sum.
        wall = time.perf_counter() - t0
        with open(out / "invocations.jsonl", "a") as f:
            f.write(json.dumps({"wall_seconds": wall, "completed": len(completed), "failed": len(failed),
                                "skipped": skipped, "interrupted": interrupted, **executor.describe(),
                                "commit": commit, "machine": machine(), "run_machines": machines,
                                "finished_at": records.now()}) + "\n")
    return {"completed": len(completed), "failed": failed, "skipped": skipped, "wall_seconds": wall}
