"""`digitpair-train`: train one variant, run a study, report it, export and push the weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

# torch, and the modules that need it, are imported in the commands that use them: --help and
# argument errors answer at once (benchmarks/bench_cli.py).

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: flags as flags
    help="Train and study the five digit-pair variants (EE-559 mini-project 1).",
)
# soft_wrap: a line longer than the terminal (or than 80 columns, when piped to a file) stays one
# line.
console = Console(soft_wrap=True)


@app.callback()
def _group():
    """Keeps `digitpair-train COMMAND` a command group even while it has one command."""


def fail(message: str) -> typer.Exit:
    """A user error: print it without a traceback; the caller raises what this returns (exit code
    2)."""
    console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(2)


DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="DIGITPAIR_DATA",
    show_default="~/.cache/digitpair",
    help="MNIST folder (IDX files, or torchvision's MNIST/raw layout).",
)
SetOption = typer.Option(
    [],
    "--set",
    metavar="KEY=VALUE",
    show_default="none",
    help="Set a RunConfig field (digitpair/core/config.py), e.g. --set epochs=5 --set lr=0.01; "
    "repeat for several.",
)
# The study files shipped with this project, in the checkout digitpair is installed from (pip
# install -e .): --preset finds them from any folder; --studies names another folder of them.
STUDIES = Path(__file__).resolve().parents[2] / "train" / "studies"
PACKAGE = Path(__file__).resolve().parents[1]  # the code a study's runs train with
StudiesOption = typer.Option(
    None,
    "--studies",
    show_default="train/studies of digitpair's checkout",
    help="The folder of the preset study files.",
)


def parse_overrides(pairs: list[str], refused: dict[str, str]) -> dict:
    """`--set KEY=VALUE` pairs -> {field: value}, each value parsed by the RunConfig field's type.
    `refused`: fields this command sets otherwise -> what to use instead. RunConfig itself
    validates the values (types, ranges, choices, combinations) when the config is built."""
    from ..core.config import FIELD_TYPES
    from ..core.typed import from_text

    overrides = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise fail(f"--set {pair!r}: expected KEY=VALUE, e.g. --set epochs=5")
        if key not in FIELD_TYPES:
            raise fail(
                f"--set {key}: not a RunConfig field; the fields are {', '.join(FIELD_TYPES)}"
            )
        if key in refused:
            raise fail(f"--set {key}: {refused[key]}")
        try:
            overrides[key] = from_text(text, FIELD_TYPES[key], key)
        except ValueError as e:
            raise fail(f"--set {e}") from None
    return overrides


def load_data(data_dir: Optional[Path]):
    from ..core.data import MNIST, DataError

    try:
        return MNIST(data_dir)
    except DataError as e:
        raise fail(str(e)) from None


def parse_channels(text: str) -> tuple[int, int, int]:
    """'32,64,128' -> (32, 64, 128): the guard's three convolutions."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or min(widths) < 1:
        raise fail(f"--channels wants three positive whole numbers, like 32,64,128; got {text!r}")
    return widths


def preset_file(name: str, folder: Optional[Path]) -> Path:
    """The study file of preset `name`; the error lists the presets there."""
    folder = folder or STUDIES
    names = sorted(p.stem for p in folder.glob("*.toml"))
    if name not in names:
        where = (
            f"the presets in {folder}: {', '.join(names)}"
            if names
            else f"{folder} holds no study files; give --studies FOLDER, or a study file"
        )
        raise fail(f"--preset {name!r}: no such study; {where}")
    return folder / f"{name}.toml"


def load_study(path: Path):
    from .study import Study

    try:
        return Study.load(path)
    except (OSError, ValueError) as e:
        raise fail(str(e)) from None


def train_with_progress(cfg, mnist, variant: str, threads: int):
    """`train_run` on the best device, with a bar of its epochs (every member's) and the last
    loss."""
    import torch
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from .training import pick_device, train_run

    torch.set_num_threads(threads)
    device = pick_device()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"{variant} on {device}", total=cfg.epochs * cfg.members, status="")

        def on_epoch(r):
            val = f" val {r['val_acc']:.1f}%" if r.get("val_acc") is not None else ""
            bar.update(task, advance=1, status=f"loss {r['train_loss']:.3f}{val}")

        return train_run(cfg, mnist, device=device, on_epoch=on_epoch)


def print_scores(variant: str, study_name: str, cfg, m) -> None:
    """One line: the trained run's scores (its training.Metrics), and which pairs it did not
    score."""
    scores = [
        f"{what} {value:.1f}%"
        for what, value in (
            ("validation pair accuracy", m.val_acc),
            ("test pair accuracy", m.test_acc),
            ("test digit accuracy", m.test_digit_acc),
        )
        if value is not None
    ]
    if not cfg.test:
        scores.append(f"test pairs not scored ({study_name} is not a final study)")
    if cfg.val_pairs == 0:
        scores.append(f"no validation pairs (all {cfg.n_pairs} train)")
    console.print(
        f"[bold]{variant}[/bold]: {' | '.join(scores)} (epoch {m.selected_epoch}; "
        f"{m.parameters:,} parameters; {m.wall_seconds:.0f} s)"
    )


@app.command()
def train(
    variant: str = typer.Option(
        "shared_aux",
        help="The variant to train: a name in VARIANTS, digitpair/core/models.py "
        "(a wrong name lists them).",
    ),
    preset: str = typer.Option(
        "best",
        help="The study whose setting is trained (best: the recipe of the "
        "README's results), from --studies.",
    ),
    setting: Optional[str] = typer.Option(
        None, show_default="the study's main one", help="Which of its settings."
    ),
    studies: Optional[Path] = StudiesOption,
    set_: list[str] = SetOption,
    data_dir: Optional[Path] = DataDirOption,
    save: Optional[Path] = typer.Option(
        None,
        show_default="not saved",
        help="Write the trained model here (a weights/<variant> folder).",
    ),
    threads: int = typer.Option(
        1,
        min=1,
        help="torch threads. One, as best's runs trained: the same numbers as their records on a "
        "CPU like theirs (each record names it; another CPU's kernels round differently, and "
        "training carries that on), and beside other busy processes a second thread mostly "
        "waits (benchmarks/README.md).",
    ),
):
    """Train one variant on one round of pairs as a study trains it: by default, round 0 of best's
    main setting. Print the setting and config used, progress and final metrics.

    The config is the study file's (its [base] and the setting) with the seeds the study gives
    round 0, then the --set fields; the test pairs are scored where the study is final, as its own
    run does. The trained model is discarded unless --save is given.
    """
    from ..core.weights import save_variant
    from .provenance import git_commit, now, provenance
    from .records import WriteError, writing
    from .study import grid

    overrides = parse_overrides(set_, {"variant": "use --variant"})
    path = preset_file(preset, studies)
    study = load_study(path)
    setting = setting or study.main
    if setting not in study.settings:
        raise fail(
            f"--setting {setting!r}: the settings of {study.name} are {', '.join(study.settings)}"
        )
    if variant not in study.variants:
        raise fail(
            f"--variant {variant!r}: the variants of {study.name} are {', '.join(study.variants)}"
        )
    try:
        (run,) = grid(study, rounds=1, only=variant, setting=setting, overrides=overrides)
    except ValueError as e:
        raise fail(str(e)) from None
    cfg = run.config
    mnist = load_data(data_dir)
    main = " (its main one)" if setting == study.main else ""
    console.print(
        f"training {run.name} of study {study.name!r} ({path}): setting {setting!r}{main}, round 0"
        + (f", with --set {' --set '.join(set_)}" if set_ else "")
    )
    console.print_json(json.dumps(cfg.to_dict()))
    commit, started_at = git_commit(), now()
    result = train_with_progress(cfg, mnist, variant, threads)
    print_scores(variant, study.name, cfg, result.metrics)
    if save is not None:
        try:
            with writing(save):
                save_variant(
                    result.model,
                    variant,
                    save,
                    train_config=cfg,
                    metrics=result.metrics,
                    provenance=provenance(commit, started_at, result.device, mnist.source),
                )
        except WriteError as e:
            raise fail(str(e)) from None
        console.print(f"saved to {save}")
    else:
        console.print("the model is discarded: give --save FOLDER to keep it")


def main():
    app()


def study_progress(bar, title: str, how: str, out: Path):
    """Progress bars (one for the study, one per run in flight, on a rich Progress) and one log line
    per finished run: the study's executors.Callbacks."""
    from .executors import Callbacks

    tasks: dict[str, int] = {}

    def on_plan(todo: list, skipped: int, removed: int) -> None:
        if removed:
            console.print(
                f"removed {removed} partial run folder(s) left by an interrupted invocation"
            )
        console.print(
            f"[bold]{title}[/bold]: {len(todo) + skipped} runs, {skipped} already finished, "
            f"{len(todo)} to train {how} -> {out}"
        )
        tasks["runs"] = bar.add_task("runs", total=len(todo) + skipped, completed=skipped)

    def on_start(spec) -> None:
        if spec.name not in tasks:  # a retried run keeps its bar
            tasks[spec.name] = bar.add_task(spec.name, total=spec.config.epochs)
        bar.update(tasks[spec.name], completed=0)

    def on_epoch(spec, record: dict) -> None:
        bar.update(tasks[spec.name], completed=record["epoch"])

    def on_finish(spec, metrics) -> None:
        bar.remove_task(tasks.pop(spec.name))
        bar.advance(tasks["runs"])
        parts = [
            f"{what} {value:5.1f}"
            for what, value in (
                ("val", metrics.val_acc),
                ("test", metrics.test_acc),
                ("digits", metrics.test_digit_acc),
            )
            if value is not None
        ]
        console.print(
            f"{spec.name:<34} {'  '.join(parts)}  epoch {metrics.selected_epoch:>3}  "
            f"{metrics.wall_seconds:5.1f}s"
        )

    def on_fail(spec, why: str) -> None:
        if spec.name in tasks:
            bar.remove_task(tasks.pop(spec.name))
        console.print(f"[red]failed:[/red] {spec.name} (nothing recorded): {escape(why.strip())}")

    return Callbacks(
        on_plan=on_plan, on_start=on_start, on_epoch=on_epoch, on_finish=on_finish, on_fail=on_fail
    )


# study.report_folder's rule, in words.
REPORT_DEFAULT = (
    "train/results/X for records in train/runs/X, e.g. evidence/best-v1; "
    "train/results/<folder name> for records elsewhere"
)


def dry_run_folders(study, out: Path | None, results: Path | None) -> tuple[Path, Path]:
    """A dry run's records and report: under --out, or in a new temporary folder."""
    import tempfile

    if out is None:
        out = Path(tempfile.mkdtemp(prefix=f"digitpair-{study.name}-dry-"))
        console.print(
            f"dry run: records and report go to {out} (a temporary folder: delete it when done)"
        )
    return out / "runs", results or out / "results"


def uncommitted_code(study, path: Path, allow_dirty: bool, dry_run: bool) -> dict | None:
    """A final study trains from code git holds, so that its runs trace to a commit: one whose
    package (digitpair/) or study file `path` has changes git does not hold, or whose commit
    cannot be known, is refused unless --allow-dirty, and then this is what its invocation records
    of the code (provenance.uncommitted). A dry run trains nothing worth tracing, so it only says
    that a real run would be refused; a study that is not final decides nothing: not checked."""
    from ..core.config import UNKNOWN
    from .provenance import UnknownCode, uncommitted

    if not study.final:
        return None
    try:
        code = uncommitted([PACKAGE, path])
        if not code["files"]:
            return None
        why = f"git does not hold the changes to {', '.join(code['files'])}"
        fix, recorded = "commit the changes", "the diff"
    except UnknownCode as e:
        code, why = {"files": UNKNOWN, "patch": UNKNOWN}, str(e)
        fix, recorded = "train from a git checkout of a commit", "that the diff is unknown"
    if dry_run:
        console.print(
            f"note: a real run would be refused: study {study.name!r} is final, and "
            f"{escape(why)} (see --allow-dirty)"
        )
        return None
    if not allow_dirty:
        raise fail(
            f"study {study.name!r} is final, and {why}. A final study trains from "
            f"committed code, so that its runs trace to a commit: {fix}, or give "
            f"--allow-dirty to train anyway, its invocation recording {recorded} in "
            "invocations.jsonl. Nothing was written."
        )
    console.print(
        f"[yellow]warning:[/yellow] final study {study.name!r} trains from uncommitted "
        f"code ({escape(why)}): invocations.jsonl records {recorded}"
    )
    return code


def run_and_report(
    study, out: Path, results: Path, specs: list, run_on, how: str, uncommitted: dict | None
) -> tuple[list, dict]:
    """Train the study's unfinished runs with progress bars, then write its report: (report files,
    run_study's counts). `uncommitted`: the code's changes the invocation records, if any."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .records import WriteError
    from .report import write_report
    from .study import run_study

    try:  # records of another config in the output folder
        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            done = run_study(
                study,
                out,
                specs,
                run_on,
                study_progress(bar, study.name, how, out),
                uncommitted=uncommitted,
            )
        return write_report(out, results, study), done
    except (ValueError, WriteError) as e:  # WriteError: the finished runs are kept, no partial left
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        console.print(f"interrupted: the finished runs are in {out}; the same command resumes")
        raise typer.Exit(130) from None


@app.command()
def study(
    study_file: Optional[Path] = typer.Argument(
        None, help="A study TOML, e.g. train/studies/best.toml."
    ),
    preset: Optional[str] = typer.Option(
        None,
        show_default="none: give a study file",
        help="A study in --studies by name: best, seed2020, ...",
    ),
    studies: Optional[Path] = StudiesOption,
    rounds: Optional[int] = typer.Option(
        None, show_default="the study's", help="Only the first N rounds (a quick look)."
    ),
    only: Optional[str] = typer.Option(None, show_default="all", help="Only this variant."),
    setting: Optional[str] = typer.Option(
        None, show_default="all", help="Only this setting of the study (e.g. its main one first)."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        show_default="none",
        help="Set a RunConfig field in every run, e.g. --set epochs=5 --set precision=fp32; "
        "repeat for several. Records go to <out>-KEY=VALUE...",
    ),
    out: Optional[Path] = typer.Option(
        None,
        show_default="train/runs/<study>, or train/runs/evidence/<study> where that exists",
        help="Run records folder.",
    ),
    results: Optional[Path] = typer.Option(
        None, show_default=REPORT_DEFAULT, help="Report folder."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="The whole pipeline on tiny synthetic data, in seconds; "
        "records and report in a temporary folder unless --out is given.",
    ),
    data_dir: Optional[Path] = DataDirOption,
    executor: str = typer.Option(
        "local",
        help="Where runs train: local (processes on this machine) or ray "
        "(a Ray cluster; pip install 'digitpair[ray]').",
    ),
    workers: int = typer.Option(
        1, help="local: runs trained at once, each in its own process (1: in this one)."
    ),
    address: Optional[str] = typer.Option(
        None,
        show_default="a local Ray instance for this study",
        help="ray: the cluster to join, auto or HOST:PORT.",
    ),
    cpus_per_run: float = typer.Option(
        1.0, help="ray: CPUs each run reserves (and its torch threads)."
    ),
    gpus_per_run: float = typer.Option(
        0.0, help="ray: GPUs each run reserves; a fraction shares a GPU (0.25: four runs)."
    ),
    max_runs: int = typer.Option(
        5000, help="Refuse a grid of more runs than this (raise it to train one)."
    ),
    allow_dirty: bool = typer.Option(
        False,
        "--allow-dirty",
        help="Train a final study from code git does not hold (changes to "
        "digitpair/ or the study file, or no git checkout), recording the diff in "
        "invocations.jsonl; refused otherwise.",
    ),
):
    """Run a study (resumable: finished runs are skipped), then write its report."""
    from .executors import check_flags, describe_flags, make_executor
    from .study import GRID_FIELDS, Study, check_selection, dry_run_study, grid, output_folders

    if (study_file is None) == (preset is None):
        raise fail("give a study file or --preset NAME (one of them)")
    overrides = parse_overrides(set_, {**GRID_FIELDS, "variant": "use --only VARIANT"})
    try:
        check_flags(
            executor,
            workers=workers,
            address=address,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
        )
        path = study_file or preset_file(preset, studies)
        study = Study.load(path)
        run_on = make_executor(
            executor,
            workers=workers,
            data_dir=data_dir,
            dry_run=dry_run,
            address=address,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
        )
        study = dry_run_study(study) if dry_run else study
        check_selection(study, rounds=rounds, only=only, setting=setting, max_runs=max_runs)
        # every run's RunConfig is built, and so checked, before anything is written
        specs = grid(study, rounds=rounds, only=only, setting=setting, overrides=overrides)
    except (OSError, ValueError) as e:
        raise fail(str(e)) from None
    code = uncommitted_code(study, path, allow_dirty, dry_run)  # before anything is written
    if dry_run:
        out, results = dry_run_folders(study, out, results)
    else:
        out, results = output_folders(study, overrides, out, results)
        load_data(data_dir)  # fail early, with a message, if MNIST is missing
    how = describe_flags(executor, workers, cpus_per_run, gpus_per_run)
    files, done = run_and_report(study, out, results, specs, run_on, how, code)
    console.print(f"report: {', '.join(str(f) for f in files)}")
    if done["failed"]:
        console.print(
            f"[red]{len(done['failed'])} run(s) failed[/red] and were not recorded: "
            f"{', '.join(done['failed'])}; the same command retries them"
        )
        raise typer.Exit(1)


@app.command()
def report(
    study_dir: Path = typer.Argument(
        ..., help="A study's run records folder, e.g. train/runs/best."
    ),
    results: Optional[Path] = typer.Option(
        None, show_default=REPORT_DEFAULT, help="Report folder."
    ),
):
    """Aggregate a study's records into summary.csv, meta.json, report.md and figures."""
    from .records import WriteError
    from .report import write_report
    from .study import Study, report_folder

    if not (study_dir / "study.toml").is_file():
        raise fail(f"{study_dir} holds no study.toml: not a study's run folder")
    try:
        study = Study.load(study_dir / "study.toml")
        files = write_report(study_dir, results or report_folder(study_dir), study)
    except (OSError, ValueError, WriteError) as e:
        raise fail(str(e)) from None
    console.print(f"report: {', '.join(str(f) for f in files)}")


@app.command("export")
def export_command(
    study_dir: Path = typer.Argument(
        ..., help="A study's run records folder, e.g. train/runs/best."
    ),
    to: Path = typer.Option(
        Path("weights"), "--to", help="The folder to write: what `push` uploads, the app loads."
    ),
    reference: Optional[str] = typer.Option(
        None,
        show_default="train/studies/seed2020.toml of digitpair's checkout",
        help="Study file whose [reference] holds the 2020 report's numbers, "
        "shown beside ours in the repo card ('' for none).",
    ),
    repo_id: Optional[str] = typer.Option(
        None,
        "--repo-id",
        help="USER/NAME the cards' usage snippet names "
        "[default: none: the cards load the folder they are in].",
    ),
    setting: Optional[str] = typer.Option(
        None,
        help="The setting to export [default: the study's main one]; "
        "e.g. recipe_fc --to weights/fc for the report's networks.",
    ),
):
    """Export per variant the best-validation run of a study's setting, with config.json and model
    cards."""
    from ..core.fmt import pct_or_none
    from ..core.weights import CONFIG_NAME, NETWORKS, WeightsError, read_config
    from .cards import synthetic
    from .publish import PublishError, export_study
    from .records import WriteError
    from .study import Study

    reference = STUDIES / "seed2020.toml" if reference is None else reference
    try:
        ref = Study.load(reference) if reference else None
    except (OSError, ValueError) as e:
        raise fail(f"--reference: {e}") from None
    try:
        files = export_study(study_dir, to, ref, repo_id, setting)
    except (PublishError, WeightsError, WriteError) as e:
        raise fail(str(e)) from None
    configs = [read_config(path) for path in files if path.name == CONFIG_NAME]
    for c in configs:
        console.print(
            f"{c.variant:<13} run {c.run:<28} validation {pct_or_none(c.metrics.val_acc)}  "
            f"test {pct_or_none(c.metrics.test_acc)}"
        )
    if any(synthetic(c) for c in configs):
        console.print(
            "[yellow]warning:[/yellow] these runs trained on synthetic data (a dry run): every "
            "card and "
            "config.json says so, and push refuses them"
        )
    whole = (
        to.parent if to.name == NETWORKS["report"] else to
    )  # fc/ is pushed with the folder above it
    console.print(
        f"wrote {len(files)} files to {to}; check {to / 'README.md'}, fit the guard for "
        f"these networks (`digitpair-train fit-guard --weights {whole}`), then "
        f"`digitpair-train push --repo-id {repo_id or 'USER/NAME'} --folder {whole}`"
    )


@app.command("fit-guard")
def fit_guard_command(
    weights: Path = typer.Option(
        Path("weights"),
        "--weights",
        help="The exported weights folder: the guard's limits are chosen "
        "for its networks, and its files go to WEIGHTS/guard/.",
    ),
    data_dir: Optional[Path] = DataDirOption,
    epochs: Optional[int] = typer.Option(
        None, min=1, show_default="guard.fit.EPOCHS", help="Epochs of the guard's network."
    ),
    seed: int = typer.Option(0, help="The seed of its initialisation and its training's draws."),
    entropic: Optional[float] = typer.Option(
        None,
        min=0.0,
        show_default="guard.fit.ENTROPIC",
        help="Weight of the entropic open-set term beside the background class (0: none).",
    ),
    objectosphere: Optional[float] = typer.Option(
        None,
        min=0.0,
        show_default="guard.fit.OBJECTOSPHERE",
        help="Weight of the objectosphere term on the readers' hidden features (0: none).",
    ),
    elastic: Optional[float] = typer.Option(
        None,
        min=0.0,
        show_default="guard.fit.ELASTIC",
        help="Scale in px of an elastic distortion of every drawing it learns from (0: none).",
    ),
    naming: Optional[float] = typer.Option(
        None,
        min=0.0,
        show_default="guard.fit.NAMING",
        help="Weight of naming each non-digit (its character or kind) by a second head, dropped "
        "once fitted (0: none).",
    ),
    members: Optional[int] = typer.Option(
        None, min=1, show_default="guard.fit.MEMBERS", help="Readers trained, their odds averaged."
    ),
    channels: Optional[str] = typer.Option(
        None,
        show_default="guard.CHANNELS",
        help="Each reader's three convolutions' channels, e.g. 32,64,128.",
    ),
    hidden: Optional[int] = typer.Option(
        None, min=1, show_default="guard.HIDDEN", help="Each reader's hidden units."
    ),
    hold_out: Optional[bool] = typer.Option(
        None,
        "--hold-out-characters/--every-character",
        show_default="guard.fit.HOLD_OUT",
        help="Keep a fifth of the letters and symbols out of fitting, to measure how it meets "
        "characters it never learned from, or fit on every one.",
    ),
    untaught: Optional[str] = typer.Option(
        None,
        show_default="guard.fit.UNTAUGHT",
        help="Characters measured but never taught as 'not a digit', e.g. 'fy?'.",
    ),
    near_misses: Optional[bool] = typer.Option(
        None,
        "--near-misses/--no-near-misses",
        show_default="guard.fit.NEAR_MISSES",
        help="Fit on digits mirrored or turned as 'not a digit' too.",
    ),
    usps: Optional[bool] = typer.Option(
        None,
        "--usps/--no-usps",
        show_default="guard.fit.HALVES",
        help="Fit on half of USPS's digits too (by a hash of each one's index); USPS's rates are "
        "then measured on the other half.",
    ),
    uci: Optional[bool] = typer.Option(
        None,
        "--uci/--no-uci",
        show_default="guard.fit.HALVES",
        help="Fit on half of UCI's digits too, as --usps does USPS's.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        show_default="WEIGHTS/guard",
        help="Write the guard's files here instead, to compare with the served one.",
    ),
):
    """Fit the 'not a digit' guard beside exported weights: network, limits, held-out rates."""
    from ..core.pen import PenError
    from ..core.weights import WeightsError
    from ..core.writers import WritersError
    from ..guard.data import DIGIT_LIKE
    from ..guard.fit import EPOCHS, HALVES, HOLD_OUT, MEMBERS, NEAR_MISSES, UNTAUGHT, Recipe, fit
    from .provenance import git_commit

    given = {
        "channels": None if channels is None else parse_channels(channels),
        "hidden": hidden,
        "entropic": entropic,
        "objectosphere": objectosphere,
        "alpha": elastic,
        "naming": naming,
    }
    recipe = dataclasses.replace(Recipe(), **{k: v for k, v in given.items() if v is not None})
    if untaught and (set(untaught) & (set("0123456789") | DIGIT_LIKE)):
        raise fail(
            f"--untaught {untaught!r}: name letters and symbols the guard measures, not digits "
            f"or characters left out as drawn like digits ({''.join(sorted(DIGIT_LIKE))})"
        )
    told = {"usps": usps, "uci": uci}
    halves = tuple(name for name in told if (name in HALVES if told[name] is None else told[name]))
    mnist = load_data(data_dir)
    try:
        files = fit(
            weights,
            epochs or EPOCHS,
            seed,
            log=console.print,
            mnist=mnist,
            out=out,
            members=members or MEMBERS,
            hold_out=HOLD_OUT if hold_out is None else hold_out,
            untaught=UNTAUGHT if untaught is None else untaught,
            near_misses=NEAR_MISSES if near_misses is None else near_misses,
            halves=halves,
            recipe=recipe,
            commit=git_commit(),
        )
    except (PenError, WritersError, WeightsError) as e:
        raise fail(str(e)) from None
    console.print(f"wrote {', '.join(str(f) for f in files)}")


@app.command("push")
def push_command(
    repo_id: str = typer.Option(
        ..., "--repo-id", help="USER/NAME of the model repo; created if it doesn't exist."
    ),
    private: bool = typer.Option(
        False, "--private", help="Create the repo private (an existing one stays as is)."
    ),
    revision: Optional[str] = typer.Option(
        None, help="Branch to commit to, created if needed [default: main]."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be uploaded; no network."
    ),
    folder: Path = typer.Option(Path("weights"), help="The exported folder to upload."),
    allow_synthetic: bool = typer.Option(
        False,
        "--allow-synthetic",
        help="Push networks trained on a dry run's "
        "synthetic digits too (refused otherwise: their numbers measure nothing).",
    ),
):
    """Upload the exported weights folder to a Hub model repo, in one commit. Token: HF_TOKEN or `hf
    auth login`."""
    from huggingface_hub import get_token

    from ..core.weights import WeightsError
    from .publish import PublishError, commit_message, push, upload_files

    try:
        files = upload_files(folder, repo_id, allow_synthetic)
    except (PublishError, WeightsError) as e:
        raise fail(str(e)) from None
    if f'load_pretrained("{repo_id}")' not in (folder / "README.md").read_text():
        console.print(
            f"[yellow]warning:[/yellow] the cards' usage snippet names another repo; "
            f"re-export with --repo-id {repo_id} to fix it"
        )
    if dry_run:
        summary, description = commit_message(folder)
        for path, size in files:
            console.print(f"{size:>10,}  {path}")
        console.print(f"{sum(s for _, s in files):>10,}  bytes in {len(files)} files")
        console.print(f"would commit to {repo_id} ({revision or 'main'}): {summary}\n{description}")
        # Says whether a token exists, never what it is.
        console.print(
            "a token is available" if get_token() else "no token found: a real push would stop here"
        )
        console.print("dry run: nothing was uploaded")
        return
    try:
        url = push(
            folder, repo_id, private=private, revision=revision, allow_synthetic=allow_synthetic
        )
    except (PublishError, WeightsError) as e:
        raise fail(str(e)) from None
    console.print(f"pushed {len(files)} files to {repo_id} ({revision or 'main'}): {url}")


if __name__ == "__main__":  # python -m digitpair.lab.cli, where the console script is not installed
    main()
