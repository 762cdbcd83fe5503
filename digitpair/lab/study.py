"""A study: a TOML file naming settings x variants x rounds, run into one record folder per run.

The study folder's layout and the run records are digitpair/lab/records.py's. One folder holds one
study definition: a second invocation may extend it (more rounds, variants or settings), never
change it, and only one invocation trains into a folder at a time (`records.lock`).

Seeds derive from the grid coordinates: data_seed = round (every setting and variant of a
round sees the same pairs, so comparisons are paired), init_seed = a stable hash of
(setting, variant, round). Any single run can be re-run alone from its recorded config.

Test pairs are sealed: only a study whose file says `final = true` scores them (once per run,
after selection). Exploratory and tuning studies decide on validation pairs alone.

A study file is checked whole before anything is written (`Study.parse`): every table and key
known, every value of its type, the study's own fields in range, each setting a valid RunConfig;
each problem is one line of the `StudyError`.
"""

from __future__ import annotations

import os
import re
import reprlib
import time
import tomllib
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.config import FIELD_TYPES, RunConfig
from ..core.models import DEFAULT_HEAD, VARIANTS
from ..core.typed import KINDS, check
from ..core.weights import atomic_write_text
from . import records
from .executors import Callbacks, Local, Trained
from .provenance import git_commit, machine, now
from .records import RunSpec

MAX_BYTES = (
    1 << 20
)  # the study files are a few kB; a bigger one is refused before it is parsed or copied
MAX_ROUNDS = 10_000
# The default folders of run records and reports, relative to where the command runs. A study
# kept as evidence for a past decision, not the study or a choice, lives one level down, in
# evidence/ of both (train/results/README.md says what each showed).
RUNS, RESULTS, EVIDENCE = Path("train/runs"), Path("train/results"), "evidence"
# Study, setting and comparison names become folder and file names
# (train/runs/<study>/<setting>-...).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")
TABLES = ("study", "base", "settings", "comparisons", "reference")
STUDY_KEYS = {
    "name": str,
    "final": bool,
    "description": str,
    "rounds": int,
    "main": str,
    "models": list,
    "format": int,
}
# A study file's settings start from RunConfig(), our recipe, changed by [base] and then by their
# own table: format 2. A file without `format` is format 1, written while RunConfig()'s defaults
# were the first recipe (Adam, 120 epochs, the epoch chosen on 200 validation pairs, fp32); its
# settings start from those, so the study.toml kept in each record folder reads as it ran.
FORMAT = 2
FORMAT_1 = {
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.0,
    "epochs": 120,
    "precision": "fp32",
    "val_pairs": 200,
    "selection": "best_val",
}
REQUIRED = ("name", "final", "rounds", "main")
# RunConfig fields `grid` sets in every run, so a study file can't.
GRID_FIELDS = {
    "variant": "the variants are [study] models",
    "data_seed": "seeds derive from the grid coordinates (round, setting, variant)",
    "init_seed": "seeds derive from the grid coordinates (round, setting, variant)",
}


class StudyError(ValueError):
    """A study file that can't be used: one line per problem, the file named."""

    def __init__(self, path, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{path}: not a valid study file ({len(problems)} "
            f"problem{'s' * (len(problems) > 1)}):\n" + "\n".join(f"  {p}" for p in problems)
        )


def _show(value) -> str:
    return reprlib.repr(value)


def _typed(where: str, key: str, value, kind: type, problems: list[str]):
    """`value` as `kind` (core/typed.py; a whole number is a number too, read as one), or None
    with a problem noted."""
    try:
        value = check(value, kind, f"{where} {key}")
    except ValueError as e:
        problems.append(str(e))
        return None
    return float(value) if kind is float else value


def _table(where: str, value, problems: list[str]) -> dict:
    if isinstance(value, dict):
        return value
    problems.append(
        f"{where} is {KINDS.get(type(value), type(value).__name__)} ({_show(value)}); "
        f"a table expected"
    )
    return {}


def _name(where: str, name: str, problems: list[str]) -> None:
    if not NAME.fullmatch(name):
        problems.append(
            f"{where} {name!r}: a name is letters, digits and _ . + = - (it names folders and "
            "files)"
        )


def _config_fields(where: str, table: dict, problems: list[str]) -> dict:
    """A [base] or [settings.NAME] table's RunConfig fields, each of the field's type."""
    fields = {}
    for key, value in table.items():
        if key in GRID_FIELDS:
            problems.append(f"{where} {key}: not set in a study file; {GRID_FIELDS[key]}")
        elif key not in FIELD_TYPES:
            problems.append(
                f"{where} {key}: unknown key; the RunConfig fields (digitpair/core/config.py) are "
                f"{', '.join(k for k in FIELD_TYPES if k not in GRID_FIELDS)}"
            )
        elif (typed := _typed(where, key, value, FIELD_TYPES[key], problems)) is not None:
            fields[key] = typed
    return fields


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    final: bool  # scores the test pairs; exploratory and tuning studies don't
    rounds: int
    main: str  # the headline setting (Fig. 1; exported weights)
    variants: tuple[str, ...]  # [study] models: the ones of VARIANTS it trains, registry names
    settings: dict[str, RunConfig]  # name -> config template (seeds filled per run)
    comparisons: dict[str, list[str]]  # "augmentation" -> ["adam_none", "adam_seed"], ...
    reference: dict  # the 2020 report's published numbers, if any
    source: str  # the TOML text

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Study":
        """Read and check a study file (`parse`); OSError where it can't be read."""
        path = Path(path)
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            raise StudyError(
                path, [f"{path.stat().st_size:,} bytes; a study file is at most {MAX_BYTES:,}"]
            )
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise StudyError(path, [f"not UTF-8 text ({e.reason} at byte {e.start})"]) from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike = "<study>") -> "Study":
        """The study `text` defines, checked whole: a `StudyError` lists every problem found."""
        raw = _read_toml(text, path)
        problems = [
            f"[{key}]: unknown table; a study file has {', '.join(f'[{t}]' for t in TABLES)}"
            for key in raw
            if key not in TABLES
        ]
        study, models = _study_meta(raw, problems)
        base = _config_fields("[base]", _table("[base]", raw.get("base", {}), problems), problems)
        overrides = _setting_overrides(raw, study, problems)
        comparisons = _comparisons(raw, overrides, problems)
        reference = _reference(raw, overrides, problems)
        settings = _settings(study, base, overrides, problems)
        if problems:
            raise StudyError(path, problems)
        return cls(
            name=study["name"],
            description=study.get("description", ""),
            final=study["final"],
            rounds=study["rounds"],
            main=study["main"],
            variants=tuple(models),
            settings=settings,
            comparisons=comparisons,
            reference=reference,
            source=text,
        )


def _read_toml(text: str, path) -> dict:
    if len(text.encode()) > MAX_BYTES:
        raise StudyError(
            path, [f"{len(text.encode()):,} bytes; a study file is at most {MAX_BYTES:,}"]
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(path, [f"not TOML: {e}"]) from None
    except RecursionError:
        raise StudyError(path, ["not readable: arrays or tables nested too deeply"]) from None


def _study_meta(raw: dict, problems: list[str]) -> tuple[dict, list]:
    """The [study] table's typed keys, and the variants it trains (its `models`)."""
    meta = _table("[study]", raw.get("study", {}), problems)
    problems += [
        f"[study] needs {key}"
        + (" = true (scores the test pairs) or false" if key == "final" else "")
        for key in REQUIRED
        if key not in meta
    ]
    study = {}
    for key, value in meta.items():
        if key not in STUDY_KEYS:
            problems.append(f"[study] {key}: unknown key; [study] has {', '.join(STUDY_KEYS)}")
        elif (typed := _typed("[study]", key, value, STUDY_KEYS[key], problems)) is not None:
            study[key] = typed
    if "name" in study:
        _name("[study] name", study["name"], problems)
    if study.get("format", 1) not in (1, FORMAT):
        problems.append(f"[study] format = {study['format']}: 1 or {FORMAT} (the current one)")
    if "rounds" in study and not 1 <= study["rounds"] <= MAX_ROUNDS:
        problems.append(f"[study] rounds = {study['rounds']}: 1 to {MAX_ROUNDS:,} rounds")
    models = study.get("models", list(VARIANTS))
    known = all(isinstance(m, str) and m in VARIANTS for m in models)
    if not models or not known or len(set(models)) < len(models):
        problems.append(
            f"[study] models = {_show(models)}: one or more of {', '.join(VARIANTS)}, each once"
        )
    return study, models


def _setting_overrides(raw: dict, study: dict, problems: list[str]) -> dict[str, dict]:
    """Each [settings.NAME] table's RunConfig fields."""
    overrides = {}
    for name, table in _table("[settings]", raw.get("settings", {}), problems).items():
        _name("setting", name, problems)
        overrides[name] = _config_fields(
            f"[settings.{name}]", _table(f"[settings.{name}]", table, problems), problems
        )
    if not overrides and isinstance(raw.get("settings", {}), dict):
        problems.append("no settings: a study has at least one [settings.NAME] table")
    if "main" in study and overrides and study["main"] not in overrides:
        problems.append(
            f"[study] main = {study['main']!r}: not a setting; the settings are "
            f"{', '.join(overrides) or 'none'}"
        )
    return overrides


def _comparisons(raw: dict, overrides: dict, problems: list[str]) -> dict[str, list[str]]:
    comparisons = {}
    for name, settings in _table("[comparisons]", raw.get("comparisons", {}), problems).items():
        _name("comparison", name, problems)
        if not isinstance(settings, list) or not all(
            isinstance(s, str) and s in overrides for s in settings
        ):
            problems.append(
                f"[comparisons] {name} = {_show(settings)}: an array of setting names expected "
                f"({', '.join(overrides) or 'none'})"
            )
        else:
            comparisons[name] = settings
    return comparisons


def _reference(raw: dict, overrides: dict, problems: list[str]) -> dict:
    reference = _table("[reference]", raw.get("reference", {}), problems)
    for key, value in reference.items():
        if key == "note":
            _typed("[reference]", key, value, str, problems)
        elif key not in overrides:
            problems.append(
                f"[reference.{key}]: not a setting; [reference] has a note and one table per "
                "setting"
            )
        else:
            for variant, cell in _table(f"[reference.{key}]", value, problems).items():
                if variant not in VARIANTS or not (
                    isinstance(cell, list)
                    and len(cell) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in cell)
                ):
                    problems.append(
                        f"[reference.{key}] {variant} = {_show(cell)}: a variant's "
                        "[mean, std] as printed expected"
                    )
    return reference


def _settings(
    study: dict, base: dict, overrides: dict, problems: list[str]
) -> dict[str, RunConfig]:
    """Each setting as RunConfig builds it, where the fields have their types: its checks (values,
    ranges, combinations) name what is wrong; a fault of [base] is said once for the settings it
    reaches."""
    settings, faults = {}, {}
    if isinstance(study.get("final"), bool):
        start = FORMAT_1 if study.get("format", 1) == 1 else {}
        for name, over in overrides.items():
            try:
                settings[name] = RunConfig(
                    **{
                        "test": study["final"],
                        **start,
                        **base,
                        **over,
                        "data_seed": 0,
                        "init_seed": 1,
                    }
                )
            except ValueError as e:
                faults.setdefault(str(e), []).append(f"[settings.{name}]")
    problems += [f"{', '.join(where)}: {fault}" for fault, where in faults.items()]
    if study.get("final") is False and any(c.test for c in settings.values()):
        problems.append(
            "test = true in a study that is not final: only a final study scores the test pairs "
            "(set final = true once the choices are made on validation)"
        )
    return settings


def init_seed(setting: str, variant: str, round_: int) -> int:
    # crc32 is stable across processes and Python versions (unlike hash()); the offset keeps it
    # away from the small data seeds.
    return 10_000 + zlib.crc32(f"{setting}/{variant}/{round_}".encode()) % 1_000_000_000


def count_runs(
    study: Study, rounds: int | None = None, only: str | None = None, setting: str | None = None
) -> int:
    """How many runs `grid` would list, without listing them."""
    return (
        (rounds if rounds is not None else study.rounds)
        * (1 if setting is not None else len(study.settings))
        * (1 if only is not None else len(study.variants))
    )


def check_selection(
    study: Study, rounds: int | None, only: str | None, setting: str | None, max_runs: int
) -> None:
    """Refuse a variant or setting the study lacks, and a grid of more than `max_runs` runs."""
    if only is not None and only not in study.variants:
        raise ValueError(f"--only {only!r}: the study's variants are {', '.join(study.variants)}")
    if setting is not None and setting not in study.settings:
        raise ValueError(
            f"--setting {setting!r}: the study's settings are {', '.join(study.settings)}"
        )
    runs = count_runs(study, rounds=rounds, only=only, setting=setting)
    if runs > max_runs:
        raise ValueError(
            f"{runs:,} runs ({rounds or study.rounds:,} rounds x "
            f"{1 if setting else len(study.settings)} "
            f"setting(s) x {1 if only else len(study.variants)} variant(s)): more than --max-runs "
            f"{max_runs:,}; give --max-runs {runs} to train them all, or fewer --rounds"
        )


def study_folders(runs: Path = RUNS) -> list[Path]:
    """Every study's run records folder under `runs`: <study>/ and evidence/<study>/."""
    return sorted(
        p.parent for p in (*runs.glob("*/study.toml"), *(runs / EVIDENCE).glob("*/study.toml"))
    )


def report_folder(runs: Path) -> Path:
    """A run records folder's report folder: its place under train/runs, under train/results
    (train/runs/evidence/best-v1 -> train/results/evidence/best-v1); train/results/<its name> for
    records outside train/runs. The one rule of `study` and `report`, so both write the same
    folder."""
    parts = runs.parts
    for i in range(len(parts) - len(RUNS.parts) - 1, -1, -1):  # the innermost train/runs
        if parts[i : i + len(RUNS.parts)] == RUNS.parts:
            return RESULTS.joinpath(*parts[i + len(RUNS.parts) :])
    return RESULTS / runs.name


def output_folders(
    study: Study, overrides: dict, out: Path | None, results: Path | None
) -> tuple[Path, Path]:
    """Where a study's run records and report go unless given: train/runs/<study>, or
    train/runs/evidence/<study> where that holds it (resumed there, not copied), and the
    report_folder of those records."""
    # An overridden study is another study: its records get their own folder.
    name = study.name + "".join(f"-{k}={v}" for k, v in sorted(overrides.items()))
    if out is None:
        out = RUNS / EVIDENCE / name if (RUNS / EVIDENCE / name).is_dir() else RUNS / name
    return out, results or report_folder(out)


def grid(
    study: Study,
    rounds: int | None = None,
    only: str | None = None,
    setting: str | None = None,
    overrides: dict | None = None,
) -> list[RunSpec]:
    """Every run of the study, round-major, so a partial study has complete early rounds.

    `overrides` sets RunConfig fields in every run (e.g. {"epochs": 5} for a quick look)."""
    specs = []
    for r in range(rounds if rounds is not None else study.rounds):
        for name, template in study.settings.items():
            if setting is not None and name != setting:
                continue
            for variant in study.variants:
                if only is not None and variant != only:
                    continue
                # simple_cnn has no pair head (VARIANTS[...].heads): it compares its digits in code
                # in every setting, so a setting's head applies to the four pair networks only.
                head = template.head if template.head in VARIANTS[variant].heads else DEFAULT_HEAD
                cfg = replace(
                    template,
                    variant=variant,
                    head=head,
                    data_seed=r,
                    init_seed=init_seed(name, variant, r),
                    **(overrides or {}),
                )
                specs.append(RunSpec(study.name, name, r, cfg))
    return specs


def check_folder(
    study: Study, out: Path, specs: list[RunSpec], finished: dict[str, records.RunRecord]
) -> None:
    """One folder, one study: refuse a study definition or a run config that differs from what the
    folder holds (a new setting, variant or round extends the study and is welcome)."""
    if (out / "study.toml").is_file():
        # The definitions as written (a dry run or an override changes the runs, not the file).
        held, study = Study.load(out / "study.toml"), Study.parse(study.source)
        changed = [
            f"{what} {a!r} in the folder, {b!r} now"
            for what, a, b in (
                ("name", held.name, study.name),
                ("final", held.final, study.final),
                ("main setting", held.main, study.main),
            )
            if a != b
        ]
        changed += [
            f"setting {name!r}: "
            f"{records.differences(cfg.to_dict(), study.settings[name].to_dict())}"
            for name, cfg in held.settings.items()
            if name in study.settings and cfg != study.settings[name]
        ]
        changed += [
            f"setting {name!r} is gone" for name in held.settings if name not in study.settings
        ]
        changed += [
            f"variant {name!r} is gone" for name in held.variants if name not in study.variants
        ]
        if changed:
            raise ValueError(
                f"{out} holds another definition of the study: {'; '.join(changed)}. "
                "A study folder holds one study; use another output folder (--out)"
            )
    # Runs of one setting share everything but the variant, its head (simple_cnn has none to swap:
    # `grid`) and the seeds.
    held = {r.setting: r for r in finished.values()}
    for spec in specs:
        if spec.name in finished:
            records.check_config(finished[spec.name], spec)
        elif spec.setting in held:
            other = held[spec.setting]
            recorded = replace(
                other.config,
                variant=spec.config.variant,
                head=spec.config.head,
                data_seed=spec.config.data_seed,
                init_seed=spec.config.init_seed,
            )
            records.check_config(replace(other, round=spec.round, config=recorded), spec)


# --- running a grid ---------------------------------------------------------------------------


def dry_run_study(study: Study) -> Study:
    """The same study on tiny synthetic data: 2 rounds, 2 epochs, 64 pairs, ensembles of 2; seconds,
    not hours."""
    tiny = dict(n_pairs=64, batch_size=16, epochs=2)
    settings = {
        k: replace(v, **tiny, val_pairs=16 if v.val_pairs else 0, members=min(v.members, 2))
        for k, v in study.settings.items()
    }
    return replace(study, rounds=min(2, study.rounds), settings=settings)


def run_study(
    study: Study,
    out: Path,
    specs: list[RunSpec],
    executor=None,
    callbacks=None,
    uncommitted: dict | None = None,
) -> dict:
    """Train every unfinished run of `specs` with `executor` (see digitpair/lab/executors.py;
    default: one after the other in this process, on real MNIST) and write each run's record here,
    in the driver, as its result comes back, naming this invocation, which is on record
    (invocations.jsonl) before anything trains and again when it ends. Returns {"completed",
    "failed" (names), "skipped", "wall_seconds"}. A write that fails is a `records.WriteError`.
    `uncommitted`: the changes git does not hold that the code trains with
    (`provenance.uncommitted`), recorded in the invocation's start line where given.

    Only scheduling and records: what to show is the caller's, through `callbacks`. One
    invocation at a time per folder (`records.lock`)."""
    with records.lock(out):
        return _run_study(study, out, specs, executor, callbacks, uncommitted)


def _run_study(
    study: Study, out: Path, specs: list[RunSpec], executor, callbacks, uncommitted: dict | None
) -> dict:
    executor = executor or Local()
    cb = callbacks or Callbacks()
    t0 = time.perf_counter()
    commit = git_commit()  # the code these runs are trained with, read before anything is written
    if not study.final and any(s.config.test for s in specs):
        raise ValueError(
            f"study {study.name!r} is not final: its runs may not score the test pairs "
            "(test = true needs final = true in the study file)"
        )
    finished = {r.name: r for r in records.load(out)}
    check_folder(study, out, specs, finished)
    with records.writing(out, "study.toml"):
        atomic_write_text(out / "study.toml", study.source)
    removed = records.clean_partials(out)
    todo = [spec for spec in specs if spec.name not in finished]
    skipped = len(specs) - len(todo)
    # On record before anything trains, so a kill (even SIGKILL, or a power loss) leaves this line,
    # and the runs it recorded name it: its time and provenance can be read whatever ends it.
    invocation = records.new_invocation()
    start = {
        "invocation": invocation,
        "started_at": now(),
        "to_train": len(todo),
        "skipped": skipped,
        **executor.describe(),
        "commit": commit,
        "machine": machine(),
    }
    records.log_invocation(out, start | ({"uncommitted": uncommitted} if uncommitted else {}))
    cb.on_plan(todo, skipped, removed)
    completed, failed, machines = [], [], []

    def on_trained(trained: Trained) -> None:
        records.write(
            out, trained.spec, trained.result, replace(trained.provenance, invocation=invocation)
        )
        completed.append(trained.spec.name)
        if trained.provenance.machine not in machines:
            machines.append(trained.provenance.machine)
        cb.on_finish(trained.spec, trained.result.metrics)

    def on_fail(spec: RunSpec, why: str) -> None:
        failed.append(spec.name)
        cb.on_fail(spec, why)

    interrupted = (
        True  # until execute returns: Ctrl-C (KeyboardInterrupt) or any error on the way out
    )
    try:
        if todo:
            executor.execute(todo, commit, on_trained, replace(cb, on_fail=on_fail))
        interrupted = False
    finally:
        # The end line, an interrupted invocation's too (Ctrl-C, an error): the study's wall time is
        # the sum.
        wall = time.perf_counter() - t0
        try:
            records.log_invocation(
                out,
                {
                    "invocation": invocation,
                    "wall_seconds": wall,
                    "completed": len(completed),
                    "failed": len(failed),
                    "skipped": skipped,
                    "interrupted": interrupted,
                    **executor.describe(),
                    "commit": commit,
                    "machine": machine(),
                    "run_machines": machines,
                    "finished_at": now(),
                },
            )
        except records.WriteError:
            if not interrupted:
                raise
            # else the error on its way out is the cause; the log reads as if the invocation was
            # killed
    return {"completed": len(completed), "failed": failed, "skipped": skipped, "wall_seconds": wall}
