"""`digitpair-train`: train one variant, run a study, report it, export and push the weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .data import MNIST, DataError
from .models import ENCODERS, VARIANTS
from .training import RunConfig, pick_device, train_run

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train and study the five digit-pair variants (EE-559 mini-project 1).")
console = Console()


@app.callback()
def _group():
    """Keeps `digitpair-train COMMAND` a command group even while it has one command."""

DataDirOption = typer.Option(None, "--data-dir", envvar="DIGITPAIR_DATA",
                             help="MNIST folder (IDX files, or torchvision's MNIST/raw layout).")


def load_data(data_dir: Optional[Path]) -> MNIST:
    try:
        return MNIST(data_dir)
    except DataError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None


@app.command()
def train(
    model: str = typer.Option("shared_aux", help=f"One of: {', '.join(VARIANTS)}."),
    encoder: str = typer.Option(RunConfig.encoder, help=f"The conv trunk: {', '.join(ENCODERS)}."),
    optimizer: str = typer.Option(RunConfig.optimizer, help="adam, sgd or rmsprop."),
    lr: float = typer.Option(RunConfig.lr),
    batch_size: int = typer.Option(RunConfig.batch_size),
    epochs: int = typer.Option(RunConfig.epochs),
    weight_decay: float = typer.Option(RunConfig.weight_decay),
    aux_weight: float = typer.Option(RunConfig.aux_weight),
    augmentation: str = typer.Option(RunConfig.augmentation, help="none, seed (the 2020 report's) or safe."),
    precision: str = typer.Option(RunConfig.precision, help="fp32, or bf16 autocast (faster where the CPU/GPU has bf16 units)."),
    data_seed: int = typer.Option(RunConfig.data_seed),
    init_seed: int = typer.Option(RunConfig.init_seed),
    data_dir: Optional[Path] = DataDirOption,
    save: Optional[Path] = typer.Option(None, help="Write the trained model here (a weights/<variant> folder)."),
):
    """Train one variant on one round of 1000 pairs; print the config, progress and final metrics."""
    from .weights import save_variant

    try:
        cfg = RunConfig(variant=model, encoder=encoder, optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs,
                        weight_decay=weight_decay, aux_weight=aux_weight, augmentation=augmentation,
                        precision=precision, data_seed=data_seed, init_seed=init_seed)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    console.print_json(json.dumps(cfg.to_dict()))
    mnist = load_data(data_dir)
    device = pick_device()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(f"{model} on {device}", total=cfg.epochs, status="")
        def on_epoch(r):
            val = f" val {r['val_acc']:.1f}%" if r.get("val_acc") is not None else ""
            bar.update(task, advance=1, status=f"loss {r['train_loss']:.3f}{val}")
        result = train_run(cfg, mnist, device=device, on_epoch=on_epoch)
    f = result.final
    scores = [f"{what} {f[key]:.1f}%" for what, key in (("validation pair accuracy", "val_acc"),
              ("test pair accuracy", "test_acc"), ("test digit accuracy", "test_digit_acc")) if f[key] is not None]
    console.print(f"[bold]{model}[/bold]: {' | '.join(scores)} (epoch {f['selected_epoch']}; "
                  f"{f['parameters']:,} parameters; {f['wall_seconds']:.0f} s; test pairs are scored by final studies only)")
    if save is not None:
        save_variant(result.model, model, save, {"train_config": cfg.to_dict(), "metrics": f})
        console.print(f"saved to {save}")


def main():
    app()


@app.command()
def study(
    study_file: Optional[Path] = typer.Argument(None, help="A study TOML, e.g. train/studies/best.toml."),
    preset: Optional[str] = typer.Option(None, help="A study in train/studies/ by name: best, seed2020, ..."),
    workers: int = typer.Option(1, help="Independent runs trained in parallel processes."),
    rounds: Optional[int] = typer.Option(None, help="Only the first N rounds (a quick look)."),
    epochs: Optional[int] = typer.Option(None, help="Override every run's epochs (records go to <out>-e<N>)."),
    precision: Optional[str] = typer.Option(None, help="Override every run's precision: fp32 or bf16 "
                                            "(records go to <out>-<precision>)."),
    only: Optional[str] = typer.Option(None, help="Only this variant."),
    setting: Optional[str] = typer.Option(None, help="Only this setting of the study (e.g. its main one first)."),
    out: Optional[Path] = typer.Option(None, help="Run records folder [default: train/runs/<study>]."),
    results: Optional[Path] = typer.Option(None, help="Report folder [default: train/results/<study>]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="The whole pipeline on tiny synthetic data, in seconds."),
    data_dir: Optional[Path] = DataDirOption,
):
    """Run a study (resumable: finished runs are skipped), then write its report."""
    import tempfile

    from .report import write_report
    from .study import Study, dry_run_study, grid, run_study

    if (study_file is None) == (preset is None):
        console.print("[red]error:[/red] give a study file or --preset NAME (one of them)")
        raise typer.Exit(2)
    path = study_file or Path("train/studies") / f"{preset}.toml"
    try:
        spec = Study.load(path)
    except (OSError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    if only is not None and only not in spec.models:
        console.print(f"[red]error:[/red] --only {only!r}: the study's variants are {', '.join(spec.models)}")
        raise typer.Exit(2)
    if setting is not None and setting not in spec.settings:
        console.print(f"[red]error:[/red] --setting {setting!r}: the study's settings are {', '.join(spec.settings)}")
        raise typer.Exit(2)
    if dry_run:
        spec = dry_run_study(spec)
        base = Path(tempfile.mkdtemp(prefix=f"digitpair-{spec.name}-dry-")) if out is None else out
        out, results = base / "runs", results or base / "results"
    else:
        suffix = (f"-e{epochs}" if epochs is not None else "") + (f"-{precision}" if precision is not None else "")
        out = out or Path("train/runs") / f"{spec.name}{suffix}"
        results = results or Path("train/results") / f"{spec.name}{suffix}"
        load_data(data_dir)   # fail early, with a message, if MNIST is missing
    overrides = {k: v for k, v in (("epochs", epochs), ("precision", precision)) if v is not None}
    try:   # an override RunConfig rejects, or records of another config in the output folder
        specs = grid(spec, rounds=rounds, only=only, setting=setting, overrides=overrides)
        run_study(spec, out, specs, workers=workers, data_dir=data_dir, dry_run=dry_run, console=console)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    files = write_report(out, results, spec)
    console.print(f"report: {', '.join(str(f) for f in files)}")


@app.command()
def report(
    study_dir: Path = typer.Argument(..., help="A study's run records folder, e.g. train/runs/best."),
    results: Optional[Path] = typer.Option(None, help="Report folder [default: train/results/<study>]."),
):
    """Aggregate a study's records into summary.csv, meta.json, report.md and figures."""
    from .report import write_report
    from .study import Study

    if not (study_dir / "study.toml").is_file():
        console.print(f"[red]error:[/red] {study_dir} holds no study.toml: not a study's run folder")
        raise typer.Exit(2)
    spec = Study.load(study_dir / "study.toml")
    files = write_report(study_dir, results or Path("train/results") / study_dir.name, spec)
    console.print(f"report: {', '.join(str(f) for f in files)}")


def fail(message: str) -> typer.Exit:
    """Print an error without a traceback; the caller raises what this returns."""
    from rich.markup import escape
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


@app.command("export")
def export_command(
    study_dir: Path = typer.Argument(..., help="A study's run records folder, e.g. train/runs/best."),
    to: Path = typer.Option(Path("weights"), "--to", help="The folder to write: what `push` uploads, the app loads."),
    reference: str = typer.Option("train/studies/seed2020.toml",
                                  help="Study file whose [reference] holds the 2020 report's numbers, shown "
                                       "beside ours in the repo card ('' for none)."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="USER/NAME the cards' usage snippet names "
                                                                  "[default: the placeholder USER/NAME]."),
):
    """Export per variant the best-validation run of a study's main setting, with config.json and model cards."""
    from .cards import pct
    from .weights import WeightsError
    from .publish import PublishError, export_study
    from .study import Study

    try:
        ref = Study.load(reference) if reference else None
    except (OSError, ValueError) as e:
        raise fail(f"--reference: {e}") from None
    try:
        files = export_study(study_dir, to, ref, repo_id)
    except (PublishError, WeightsError) as e:
        raise fail(str(e)) from None
    for path in files:
        if path.name == "config.json":
            c = json.loads(path.read_text())
            console.print(f"{c['variant']:<13} run {c['run']:<28} validation {pct(c['metrics']['val_acc'])} %  "
                          f"test {pct(c['metrics']['test_acc'])} %", soft_wrap=True)
    console.print(f"wrote {len(files)} files to {to}; check {to / 'README.md'}, then "
                  f"`digitpair-train push --repo-id {repo_id or 'USER/NAME'} --folder {to}`", soft_wrap=True)


@app.command("push")
def push_command(
    repo_id: str = typer.Option(..., "--repo-id", help="USER/NAME of the model repo; created if it doesn't exist."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (an existing one stays as is)."),
    revision: Optional[str] = typer.Option(None, help="Branch to commit to, created if needed [default: main]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be uploaded; no network."),
    folder: Path = typer.Option(Path("weights"), help="The exported folder to upload."),
):
    """Upload the exported weights folder to a Hub model repo, in one commit. Token: HF_TOKEN or `hf auth login`."""
    from huggingface_hub import get_token

    from .weights import WeightsError
    from .publish import PublishError, commit_message, push, upload_files

    try:
        files = upload_files(folder, repo_id)
    except (PublishError, WeightsError) as e:
        raise fail(str(e)) from None
    if f'load_pretrained("{repo_id}")' not in (folder / "README.md").read_text():
        console.print(f"[yellow]warning:[/yellow] the cards' usage snippet names another repo; "
                      f"re-export with --repo-id {repo_id} to fix it", soft_wrap=True)
    if dry_run:
        summary, description = commit_message(folder)
        for path, size in files:
            console.print(f"{size:>10,}  {path}", soft_wrap=True)
        console.print(f"{sum(s for _, s in files):>10,}  bytes in {len(files)} files", soft_wrap=True)
        console.print(f"would commit to {repo_id} ({revision or 'main'}): {summary}\n{description}", soft_wrap=True)
        # Says whether a token exists, never what it is.
        console.print("a token is available" if get_token() else "no token found: a real push would stop here",
                      soft_wrap=True)
        console.print("dry run: nothing was uploaded")
        return
    try:
        url = push(folder, repo_id, private=private, revision=revision)
    except (PublishError, WeightsError) as e:
        raise fail(str(e)) from None
    console.print(f"pushed {len(files)} files to {repo_id} ({revision or 'main'}): {url}", soft_wrap=True)


if __name__ == "__main__":   # python -m digitpair.cli, where the console script is not installed
    main()
