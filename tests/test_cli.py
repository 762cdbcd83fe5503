"""The command line: one override mechanism (--set), one error path, help that says what each option does."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from digitpair.cli import app
from digitpair.study import Study
from digitpair.training import RunConfig

ROOT = Path(__file__).resolve().parents[1]
COMMAND = typer.main.get_command(app)


@pytest.mark.parametrize("name", sorted(COMMAND.commands))
def test_help_shows_flags_as_flags_and_every_default(name):
    command = COMMAND.commands[name]
    ctx = click.Context(command)
    for param in command.params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        option, text = param.get_help_record(ctx)
        if param.is_flag:
            assert option.strip() == param.opts[0], f"{name} {option}: a flag takes no value"
        elif not param.required:
            assert "default:" in text, f"{name} {option}: its default is not shown"
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0 and "<bool>" not in result.output


def test_train_help_says_the_model_is_discarded_without_save():
    result = CliRunner().invoke(app, ["train", "--help"])
    assert "discarded unless --save" in " ".join(result.output.split())


@pytest.mark.parametrize("command", [["train"], ["study", "--preset", "best", "--dry-run"]])
@pytest.mark.parametrize("override, message", [
    ("foo=1", "not a RunConfig field"),
    ("epochs=abc", "epochs takes an int"),
    ("lr=fast", "lr takes a float"),
    ("swap=maybe", "swap takes true or false"),
    ("epochs", "expected KEY=VALUE"),
    ("variant=shared", "--set variant: use --"),
    ("precision=fp8", "precision='fp8'; choose one of fp32, bf16"),   # RunConfig's own validation
])
def test_bad_overrides_are_one_clear_error(command, override, message, tmp_path):
    result = CliRunner().invoke(app, [*command, "--set", override, *(["--out", str(tmp_path)] if
                                                                       command[0] == "study" else [])])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())   # refused before anything is trained or written


def test_study_refuses_seed_overrides(tmp_path):
    result = CliRunner().invoke(app, ["study", "--preset", "best", "--dry-run", "--set", "init_seed=3",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "grid coordinates" in result.output


def test_study_overrides_reach_every_run_typed(tmp_path):
    args = ["study", "--preset", "best", "--dry-run", "--only", "shared", "--setting", "recipe", "--rounds", "1",
            "--set", "epochs=1", "--set", "lr=1e-2", "--set", "swap=false", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (config,) = tmp_path.glob("runs/*/config.json")
    recorded = RunConfig.from_dict(json.loads(config.read_text())["train_config"])
    assert (recorded.epochs, recorded.lr, recorded.swap) == (1, 0.01, False)


def test_piped_dry_run_keeps_one_line_per_run_and_says_where_it_wrote():
    """Piped to a file, rich would wrap at 80 columns: each log line must stay one line. A dry run
    without --out writes into a temporary folder and says which."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    out = subprocess.run([sys.executable, "-m", "digitpair.cli", "study", "--preset", "best", "--dry-run",
                          "--only", "shared_aux", "--rounds", "1"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (where,) = [line.split(" go to ", 1)[1].split(" (", 1)[0] for line in lines if line.startswith("dry run:")]
    assert (Path(where) / "runs").is_dir() and (Path(where) / "results" / "report.md").is_file()
    shutil.rmtree(where)
    runs = [line for line in lines if line.split(" ", 1)[0].endswith("-shared_aux-r00")]
    assert len(runs) == len(Study.load("train/studies/best.toml").settings)
    assert all(" test " in line and "epoch" in line and line.endswith("s") for line in runs)   # all pairs train: no val
    assert any(len(line) > 40 for line in lines)
