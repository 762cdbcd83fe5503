"""The command line: one override mechanism (--set), one error path, help that says what each option
does."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import typer
from typer.testing import CliRunner

from digitpair.core.config import Metrics, RunConfig
from digitpair.core.models import VARIANTS
from digitpair.guard import fit as guard_fit
from digitpair.lab.cli import app
from digitpair.lab.study import Study, grid

from .conftest import write_guard

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
@pytest.mark.parametrize(
    "override, message",
    [
        ("foo=1", "not a RunConfig field"),
        ("epochs=abc", "--set epochs = 'abc': a whole number expected"),
        ("lr=fast", "--set lr = 'fast': a number expected"),
        ("swap=maybe", "--set swap = 'maybe': true or false expected"),
        ("epochs", "expected KEY=VALUE"),
        ("variant=shared", "--set variant: use --"),
        (
            "precision=fp8",
            "precision='fp8'; choose one of fp32, bf16",
        ),  # RunConfig's own validation
        # RunConfig's ranges, named with the field (best: 1000 pairs per split)
        ("epochs=0", "epochs=0 is out of range: epochs takes an integer >= 1"),
        ("epochs=-3", "epochs=-3 is out of range: epochs takes an integer >= 1"),
        ("n_pairs=0", "n_pairs=0 is out of range: n_pairs takes an integer in [1, 5000]"),
        ("lr=nan", "lr=nan is out of range: lr takes a finite number > 0"),
        ("lr=inf", "lr=inf is out of range: lr takes a finite number > 0"),
        ("lr=-1", "lr=-1.0 is out of range: lr takes a finite number > 0"),
        ("batch_size=0", "batch_size=0 is out of range: batch_size takes an integer >= 1"),
        ("momentum=1", "momentum=1.0 is out of range: momentum takes a finite number in [0, 1)"),
        (
            "val_pairs=1000",
            "val_pairs=1000 is out of range: val_pairs takes an integer in [0, ",
        ),  # < n_pairs
    ],
)
def test_bad_overrides_are_one_clear_error(command, override, message, tmp_path):
    result = CliRunner().invoke(
        app,
        [*command, "--set", override, *(["--out", str(tmp_path)] if command[0] == "study" else [])],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # refused before anything is trained or written


@pytest.mark.parametrize("channels", ["32,64", "32,64,x", "0,8,8"])
def test_a_bad_guard_width_is_one_clear_error_before_any_fitting(channels, tmp_path):
    result = CliRunner().invoke(
        app,
        ["fit-guard", "--weights", str(tmp_path), "--channels", channels, "--out", str(tmp_path)],
    )
    assert result.exit_code == 2, result.output
    assert "--channels wants three positive whole numbers" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


@pytest.fixture
def fit_asked(monkeypatch) -> dict:
    """What `fit-guard` hands `guard.fit.fit` (its keyword arguments), with nothing fitted."""
    asked = {}
    monkeypatch.setattr("digitpair.lab.cli.load_data", lambda data_dir: None)
    monkeypatch.setattr("digitpair.guard.fit.fit", lambda *a, **kw: asked.update(kw) or [])
    return asked


@pytest.mark.parametrize(
    "flag, switches",
    [
        ([], {"hold_out": True, "halves": guard_fit.HALVES}),
        (["--every-character"], {"hold_out": False, "halves": guard_fit.HALVES}),
        (["--hold-out-characters", "--no-uci"], {"hold_out": True, "halves": ()}),
        (["--usps", "--no-uci"], {"hold_out": True, "halves": ("usps",)}),
        (["--uci", "--no-usps"], {"hold_out": True, "halves": ("uci",)}),
        (["--uci", "--usps"], {"hold_out": True, "halves": ("usps", "uci")}),
    ],
)
def test_fit_guard_holds_characters_out_and_fits_on_usps_or_uci_as_told_else_as_fit_halves(
    flag, switches, fit_asked, tmp_path
):
    result = CliRunner().invoke(app, ["fit-guard", "--weights", str(tmp_path), *flag])
    assert result.exit_code == 0, result.output
    assert {name: fit_asked[name] for name in switches} == switches


def test_fit_guard_hands_its_recipe_options_to_the_fit_and_keeps_the_defaults_unless_told(
    fit_asked, tmp_path
):
    from digitpair.guard.fit import Recipe

    result = CliRunner().invoke(app, ["fit-guard", "--weights", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert fit_asked["recipe"] == Recipe()
    told = ["--naming", "0.5", "--entropic", "0", "--elastic", "20", "--hidden", "64"]
    result = CliRunner().invoke(app, ["fit-guard", "--weights", str(tmp_path), *told])
    assert result.exit_code == 0, result.output
    assert fit_asked["recipe"] == Recipe(naming=0.5, entropic=0.0, alpha=20.0, hidden=64)


def test_fit_guard_records_the_commit_of_the_code_that_fits(fit_asked, monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITPAIR_COMMIT", "abc1234-dirty")  # what git_commit reads of such code
    result = CliRunner().invoke(app, ["fit-guard", "--weights", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert fit_asked["commit"] == "abc1234-dirty"


def test_fit_guard_teaches_every_character_it_measures_unless_told_and_refuses_digits(
    fit_asked, tmp_path
):
    for untaught in ([], ["--untaught", "fy?"]):
        result = CliRunner().invoke(app, ["fit-guard", "--weights", str(tmp_path), *untaught])
        assert result.exit_code == 0, result.output
        assert fit_asked["untaught"] == "".join(untaught[1:])
    for bad in ("f7", "fO"):  # a digit; an O, left out as drawn like a 0
        fit_asked.clear()
        result = CliRunner().invoke(app, ["fit-guard", "--untaught", bad])
        assert result.exit_code == 2 and "--untaught" in result.output and not fit_asked


def test_study_refuses_seed_overrides(tmp_path):
    result = CliRunner().invoke(
        app,
        ["study", "--preset", "best", "--dry-run", "--set", "init_seed=3", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2 and "grid coordinates" in result.output


def test_study_overrides_reach_every_run_typed(tmp_path):
    args = [
        "study",
        "--preset",
        "best",
        "--dry-run",
        "--only",
        "shared",
        "--setting",
        "recipe",
        "--rounds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "lr=1e-2",
        "--set",
        "swap=false",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (config,) = tmp_path.glob("runs/*/config.json")
    recorded = RunConfig.from_dict(json.loads(config.read_text())["train_config"])
    assert (recorded.epochs, recorded.lr, recorded.swap) == (1, 0.01, False)


def test_piped_dry_run_keeps_one_line_per_run_and_says_where_it_wrote():
    """Piped to a file, rich would wrap at 80 columns: each log line must stay one line. A dry run
    without --out writes into a temporary folder and says which."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "40"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "digitpair.lab.cli",
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--only",
            "shared_aux",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (where,) = [
        line.split(" go to ", 1)[1].split(" (", 1)[0]
        for line in lines
        if line.startswith("dry run:")
    ]
    assert (Path(where) / "runs").is_dir() and (Path(where) / "results" / "report.md").is_file()
    shutil.rmtree(where)
    runs = [line for line in lines if line.split(" ", 1)[0].endswith("-shared_aux-r00")]
    assert len(runs) == len(Study.load("train/studies/best.toml").settings)
    assert all(
        " test " in line and "epoch" in line and line.endswith("s") for line in runs
    )  # all pairs train: no val
    assert any(len(line) > 40 for line in lines)


# --- train: the recipe of the README's results, from its study file ------------------------------

BEST = ROOT / "train" / "studies" / "best.toml"
PRESETS = sorted(p.stem for p in (ROOT / "train" / "studies").glob("*.toml"))


@pytest.fixture
def trained(monkeypatch):
    """`train` with its data and its training stubbed out: the configs it would train, in order."""
    configs = []

    def train_run(cfg, mnist, device=None, on_epoch=None):
        configs.append(cfg)
        metrics = Metrics(
            selected_epoch=cfg.epochs,
            val_acc=None,
            val_digit_acc=None,
            test_acc=50.0 if cfg.test else None,
            test_digit_acc=None,
            parameters=1,
            train_pairs=cfg.n_pairs - cfg.val_pairs,
            test_pairs=cfg.n_pairs,
            wall_seconds=0.0,
        )
        return SimpleNamespace(metrics=metrics, model=None)

    monkeypatch.setattr("digitpair.lab.training.train_run", train_run)
    monkeypatch.setattr("digitpair.core.data.MNIST", lambda data_dir=None: None)
    return configs


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_train_trains_bests_main_setting_as_the_study_does_from_any_folder(
    variant, trained, tmp_path, monkeypatch
):
    monkeypatch.chdir(
        tmp_path
    )  # not the repository: the preset is found from the installed package
    result = CliRunner().invoke(app, ["train", "--variant", variant])
    assert result.exit_code == 0, result.output
    best = Study.load(BEST)
    (run,) = grid(best, rounds=1, only=variant, setting=best.main)  # the study's own round-0 run
    assert trained == [run.config]
    assert (
        f"training {run.name} of study 'best' ({BEST}): setting '{best.main}' (its main one), "
        "round 0" in result.output
    )
    assert (
        json.loads(result.output[result.output.index("{") : result.output.index("}") + 1])
        == run.config.to_dict()
    )
    assert "test pair accuracy 50.0%" in result.output and not list(tmp_path.iterdir())


def test_train_reads_its_values_from_the_study_file_alone(trained, tmp_path):
    """One source of truth: change best.toml and `train` trains the change; --setting and --set
    apply."""
    studies = tmp_path / "studies"
    studies.mkdir()
    text = BEST.read_text()
    assert (
        "\n[base]" not in text
    )  # the recipe is RunConfig()'s: a [base] changes it for every setting
    (studies / "best.toml").write_text(
        text.replace("\n[settings.recipe]", "\n[base]\nlr = 0.05\n\n[settings.recipe]", 1)
    )
    args = ["train", "--studies", str(studies)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert (
        CliRunner().invoke(app, [*args, "--setting", "recipe_fc", "--set", "epochs=3"]).exit_code
        == 0
    )
    edited = Study.load(studies / "best.toml")
    main, fc = (
        grid(edited, rounds=1, only="shared_aux", setting=s)[0].config
        for s in ("recipe", "recipe_fc")
    )
    assert trained == [main, replace(fc, epochs=3)] and main.lr == fc.lr == 0.05 and fc.head == "fc"
    result = CliRunner().invoke(app, [*args, "--setting", "nope"])
    assert (
        result.exit_code == 2
        and "the settings of best are recipe, recipe_fc, ensemble5" in result.output
    )


def test_a_non_final_presets_train_never_scores_test_pairs(trained):
    result = CliRunner().invoke(app, ["train", "--preset", "tuning"])
    assert result.exit_code == 0, result.output
    assert (
        not trained[0].test
        and "test pairs not scored (tuning is not a final study)" in result.output
    )


# --- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["train"], ["study", "--dry-run"]])
def test_an_unknown_preset_lists_the_known_ones(command, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            *command,
            "--preset",
            "bset",
            *(["--out", str(tmp_path)] if command[0] == "study" else []),
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        f"--preset 'bset': no such study; the presets in {ROOT / 'train' / 'studies'}: "
        f"{', '.join(PRESETS)}" in " ".join(result.output.split())
    )
    assert PRESETS[:2] == ["best", "levers"] and not list(tmp_path.iterdir())
    empty = CliRunner().invoke(app, [*command, "--preset", "best", "--studies", str(tmp_path)])
    assert empty.exit_code == 2 and "holds no study files; give --studies FOLDER" in " ".join(
        empty.output.split()
    )


def test_a_preset_study_runs_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "tuning",
            "--dry-run",
            "--only",
            "shared",
            "--rounds",
            "1",
            "--out",
            "dry",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dry" / "results" / "report.md").is_file()


# --- a study's configuration is checked whole before anything is written -------------------------


@pytest.mark.parametrize(
    "override",
    [
        "epochs=-5",
        "epochs=0",
        "batch_size=-1",
        "batch_size=0",
        "lr=nan",
        "lr=inf",
        "lr=-1",
        "n_pairs=0",
    ],
)
def test_a_bad_set_in_a_final_study_writes_nothing(override, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"  # where a dry run without --out would make its folder
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    for where in (
        ["--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results")],
        ["--dry-run"],
    ):
        result = CliRunner().invoke(app, ["study", "--preset", "best", "--set", override, *where])
        assert result.exit_code == 2, result.output
        field = override.split("=")[0]
        assert f"{field}=" in result.output and f"is out of range: {field} takes" in result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"] and not list(temp.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_run_is_one_line_and_nothing_of_it_is_recorded(workers, tmp_path):
    """A config RunConfig accepts but the data can't serve: 1000 pairs of the dry run's 600
    images."""
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
            "--rounds",
            "1",
            "--set",
            "n_pairs=1000",
            "--workers",
            str(workers),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert line.startswith(
        "failed: recipe-shared-r00 (nothing recorded): ValueError: cannot draw 1000 pairs "
        "of distinct images from 600 images (data.py:"
    )
    assert (
        "Traceback" not in result.output and not (tmp_path / "runs" / "recipe-shared-r00").exists()
    )
    assert "1 run(s) failed and were not recorded: recipe-shared-r00" in result.output


# --- synthetic data is never mistaken for a model of digits ---------------------------------------


def test_a_dry_runs_records_and_exports_say_synthetic_and_push_refuses_them(tmp_path, monkeypatch):
    from huggingface_hub import HfApi, ModelCard

    from digitpair.lab import records
    from digitpair.lab.cards import SYNTHETIC_NOTE

    runs, weights = tmp_path / "runs", tmp_path / "weights"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            "--setting",
            "recipe",
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    finals = [json.loads(p.read_text()) for p in runs.glob("*/final.json")]
    assert len(finals) == len(VARIANTS) and {f["provenance"]["data"] for f in finals} == {
        "synthetic"
    }
    with gzip.open(runs / records.PACK, "rt") as f:
        assert {json.loads(line)["provenance"]["data"] for line in f} == {"synthetic"}
    assert (
        "**Synthetic data**: 5 of these runs trained"
        in (tmp_path / "results" / "report.md").read_text()
    )

    result = CliRunner().invoke(app, ["export", str(runs), "--to", str(weights)])
    assert result.exit_code == 0, result.output
    assert "these runs trained on synthetic data" in result.output
    cards = sorted(weights.glob("**/README.md"))
    assert len(cards) == len(VARIANTS) + 1
    for path in cards:
        card = ModelCard.load(path)
        assert SYNTHETIC_NOTE in card.text and "ylecun/mnist" not in card.content
        assert (
            card.data.datasets is None
            and card.data.eval_results is None
            and "synthetic-data" in card.data.tags
        )
    for name in VARIANTS:
        assert (
            json.loads((weights / name / "config.json").read_text())["provenance"]["data"]
            == "synthetic"
        )

    def no_network(*args, **kwargs):
        raise AssertionError("a refused push reaches no Hub")

    monkeypatch.setattr(HfApi, "create_repo", no_network)
    monkeypatch.setattr(HfApi, "upload_folder", no_network)
    for dry in ([], ["--dry-run"]):
        result = CliRunner().invoke(
            app, ["push", "--repo-id", "user/name", "--folder", str(weights), *dry]
        )
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert (
            f"{weights} holds networks trained on synthetic data, a dry run's (simple_cnn,"
            in result.output
        )
        assert "--allow-synthetic" in result.output
    result = CliRunner().invoke(
        app,
        [
            "push",
            "--repo-id",
            "user/name",
            "--folder",
            str(weights),
            "--dry-run",
            "--allow-synthetic",
        ],
    )
    assert result.exit_code == 2 and "fit-guard --weights" in result.output  # no guard yet
    write_guard(weights)
    result = CliRunner().invoke(
        app,
        [
            "push",
            "--repo-id",
            "user/name",
            "--folder",
            str(weights),
            "--dry-run",
            "--allow-synthetic",
        ],
    )
    assert result.exit_code == 0 and "dry run: nothing was uploaded" in result.output


# --- MNIST: a folder that does not exist ----------------------------------------------------------


@pytest.mark.parametrize("command", [["train"], ["study", "--preset", "best"]])
def test_a_data_dir_that_does_not_exist_is_a_short_error_that_creates_nothing(
    command, tmp_path, monkeypatch
):
    def download(*args):
        raise AssertionError("no download is tried")

    monkeypatch.setattr("digitpair.core.data._download", download)
    monkeypatch.setattr("digitpair.core.data.DEFAULT_ROOT", tmp_path / "cache")
    # Committed code, whatever this checkout's state: the study's refusal of changes comes first.
    monkeypatch.setattr("digitpair.lab.provenance.uncommitted", lambda paths: CLEAN)
    missing = tmp_path / "mnits"
    result = CliRunner().invoke(
        app,
        [
            *command,
            "--data-dir",
            str(missing),
            *(["--out", str(tmp_path / "runs")] if command[0] == "study" else []),
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    first, *ways = result.output.splitlines()
    assert (
        first
        == f"error: {missing}: no such folder (named by --data-dir or $DIGITPAIR_DATA); nothing "
        "was created"
    )
    assert ways[0].startswith("MNIST is four IDX files (train-images-idx3-ubyte[.gz],")
    assert [way.split(".", 1)[0].strip() for way in ways[1:]] == ["1", "2", "3", "4"]
    assert "--data-dir or $DIGITPAIR_DATA" in ways[2] and str(tmp_path / "cache") in ways[3]
    assert not list(tmp_path.iterdir())


# --- the CLI answers at once
# ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["train", "--help"],
        ["study", "--help"],
        ["export", "--help"],
        ["train", "--no-such-option"],
    ],
)
def test_help_and_argument_errors_import_no_torch(args):
    """What makes `--help` take 2 s is importing torch (and gradio, matplotlib, the Hub client):
    benchmarks/bench_cli.py times it; here, none of them is imported."""
    code = (
        "import runpy, sys\nsys.argv[0] = 'digitpair-train'\ntry:\n    "
        "runpy.run_module('digitpair.lab.cli', "
        "run_name='__main__')\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('torch', "
        "'gradio', "
        "'matplotlib', 'huggingface_hub', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert out.stdout.splitlines()[-1] == "[]", out.stdout + out.stderr


# --- a final study trains from committed code -------------------------------------------------

CLEAN = {"files": [], "patch": ""}
DIRTY = {
    "files": ["digitpair/lab/study.py", "train/studies/best.toml"],
    "patch": "diff --git a/digitpair/lab/study.py b/digitpair/lab/study.py ...",
}
TINY = [
    "--only",
    "simple_cnn",
    "--rounds",
    "1",
    "--set",
    "epochs=1",
    "--set",
    "n_pairs=64",
    "--set",
    "batch_size=16",
]
CHANGES = "git does not hold the changes to digitpair/lab/study.py, train/studies/best.toml"


def one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def uncommitted(monkeypatch):
    """The code as git holds it, set by the test: the dict `provenance.uncommitted` returns, or the
    UnknownCode it raises. Training, where it happens, is on synthetic digits."""
    from digitpair.core import data
    from digitpair.lab import executors

    state = {"code": DIRTY}

    def read(paths):
        assert [p.name for p in paths] == ["digitpair", paths[-1].name] and paths[-1].is_file()
        if isinstance(state["code"], Exception):
            raise state["code"]
        return state["code"]

    monkeypatch.setattr("digitpair.lab.provenance.uncommitted", read)
    monkeypatch.setattr(executors, "study_data", lambda data_dir, dry_run: data.synthetic_mnist())
    monkeypatch.setattr("digitpair.lab.cli.load_data", lambda data_dir: None)
    monkeypatch.setenv("DIGITPAIR_COMMIT", "abc1234-dirty")  # what git_commit reads of such code
    return state


def test_a_final_study_from_uncommitted_code_is_refused_and_writes_nothing(uncommitted, tmp_path):
    from digitpair.lab.provenance import UnknownCode

    args = [
        "study",
        "--preset",
        "best",
        *TINY,
        "--out",
        str(tmp_path / "runs"),
        "--results",
        str(tmp_path / "results"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert one_line(result.output) == (
        f"error: study 'best' is final, and {CHANGES}. A final study trains from committed code, "
        "so that its runs trace to a commit: commit the changes, or give --allow-dirty to train "
        "anyway, its invocation recording the diff in invocations.jsonl. Nothing was written."
    )
    unknown = (
        "digitpair is imported from /site, which is not a git checkout: the commit of its "
        "code cannot be known"
    )
    uncommitted["code"] = UnknownCode(unknown)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert one_line(result.output) == (
        f"error: study 'best' is final, and {unknown}. A final study trains from committed code, "
        "so that its runs trace to a commit: train from a git checkout of a commit, or give "
        "--allow-dirty to train anyway, its invocation recording that the diff is unknown in "
        "invocations.jsonl. Nothing was written."
    )
    assert not list(tmp_path.iterdir())


def test_allow_dirty_trains_and_its_start_line_records_the_diff(uncommitted, tmp_path):
    from digitpair.lab import records

    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            *TINY,
            "--setting",
            "recipe",
            "--allow-dirty",
            "--out",
            str(runs),
            "--results",
            str(tmp_path / "results"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        f"warning: final study 'best' trains from uncommitted code ({CHANGES}): "
        "invocations.jsonl records the diff"
    ) in one_line(result.output)
    lines = (runs / records.INVOCATIONS).read_text().splitlines()
    start, end = map(json.loads, lines)
    assert start["uncommitted"] == DIRTY and "uncommitted" not in end
    (run,) = records.load(runs)
    assert (run.provenance.commit, run.provenance.dirty) == ("abc1234", True)
    assert (
        "- `recipe`: 1 of 1 runs trained from uncommitted code (commit `abc1234-dirty`); the "
        "diff is on record for 1 of them"
    ) in (tmp_path / "results" / "report.md").read_text()


def test_uncommitted_code_trains_a_dry_run_and_a_study_that_is_not_final(uncommitted, tmp_path):
    from digitpair.lab import records

    dry = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "best",
            "--dry-run",
            *TINY,
            "--setting",
            "recipe",
            "--out",
            str(tmp_path / "dry"),
        ],
    )
    assert dry.exit_code == 0, dry.output
    assert one_line(dry.output).startswith(
        f"note: a real run would be refused: study 'best' is final, and {CHANGES} "
        "(see --allow-dirty)"
    )
    tuning = CliRunner().invoke(
        app,
        [
            "study",
            "--preset",
            "tuning",
            *TINY,
            "--setting",
            "base",
            "--set",
            "val_pairs=16",
            "--out",
            str(tmp_path / "tuning"),
            "--results",
            str(tmp_path / "tuning-results"),
        ],
    )
    assert tuning.exit_code == 0, tuning.output
    assert not any(line.startswith(("note:", "warning:")) for line in tuning.output.splitlines())
    for runs in (tmp_path / "dry" / "runs", tmp_path / "tuning"):
        assert len(records.load(runs)) == 1
        assert not any("uncommitted" in line for line in records.read_invocations(runs))


def test_a_final_study_in_a_checkout_with_changes_or_in_no_checkout_is_refused(tmp_path):
    """The whole command on a copy of the package: committed, then changed; then without .git."""
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT / "digitpair", repo / "digitpair", ignore=shutil.ignore_patterns("__pycache__")
    )
    (repo / "best.toml").write_text(BEST.read_text())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "a copy"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    with open(repo / "digitpair" / "core" / "fmt.py", "a") as f:
        f.write("# a change git does not hold\n")
    env = {k: v for k, v in os.environ.items() if k != "DIGITPAIR_COMMIT"}
    env["PYTHONPATH"] = str(repo)

    def study():
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "digitpair.lab.cli",
                "study",
                "best.toml",
                "--out",
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=repo,
            timeout=300,
        )

    changed = study()
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "git does not hold the changes to digitpair/core/fmt.py. A final study" in one_line(
        changed.stdout
    )
    shutil.rmtree(repo / ".git")
    copied = study()
    assert copied.returncode == 2, copied.stdout + copied.stderr
    assert (
        f"digitpair is imported from {repo.resolve()}, which is not a git checkout: the "
        "commit of its code cannot be known"
    ) in one_line(copied.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert sorted(p.name for p in repo.iterdir() if p.name != "digitpair") == ["best.toml"]
