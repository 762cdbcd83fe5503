"""Pretrained weights: export from a study, model cards, load from a folder or the HF cache,
push."""

import dataclasses
import json
import shutil
import struct
import time
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from digitpair.core.config import Metrics, RunConfig
from digitpair.core.models import VARIANTS, build_model
from digitpair.core.weights import (
    CONFIG_NAME,
    HUB_FILES,
    WeightsError,
    file_sha256,
    load_variant,
    read_config,
    save_variant,
)
from digitpair.guard.pretrained import load_pretrained
from digitpair.lab import cards, records
from digitpair.lab.cli import app
from digitpair.lab.provenance import now, provenance
from digitpair.lab.publish import (
    PublishError,
    commit_message,
    export_study,
    push,
    select_runs,
    upload_files,
)
from digitpair.lab.study import Study, grid
from digitpair.lab.training import RunResult

from .conftest import write_guard

NAMES = list(VARIANTS)
REFERENCE = Study.load("train/studies/seed2020.toml")
# A study whose runs select on validation pairs: the definition the first `best` ran with.
BEST_V1 = "train/runs/evidence/best-v1/study.toml"
FAKE_TOKEN = "hf_FAKEtokenNEVERtoBEprinted0123456789"
runner = CliRunner()


def pairs(seed: int = 0) -> torch.Tensor:
    return torch.rand(16, 2, 14, 14, generator=torch.Generator().manual_seed(seed)) * 255


def val_acc(round_: int, name: str) -> float:
    """Round 1 always wins on validation; round 2 always has the best test accuracy."""
    return {0: 80.0, 1: 90.0, 2: 85.0}[round_] + NAMES.index(name)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """The `best` study's layout, 3 rounds of its main setting + one run of another, written by
    records.write with untrained models and made-up metrics (milliseconds, not hours)."""
    study = Study.load(BEST_V1)
    out = tmp_path_factory.mktemp("runs") / "best"
    out.mkdir()
    (out / "study.toml").write_text(study.source)
    specs = [s for s in grid(study, rounds=3) if s.setting == study.main]
    specs.append(next(s for s in grid(study, rounds=1) if s.setting != study.main))
    write_fake_runs(out, specs)
    return out


def write_fake_runs(out, specs) -> None:
    for spec in specs:
        torch.manual_seed(spec.config.init_seed)
        model = build_model(spec.config.variant, head=spec.config.head)
        model.set_normalization(pairs(spec.round))
        name = spec.config.variant
        test = 99.0 if spec.round == 2 else 95.0 + spec.round
        metrics = Metrics(
            selected_epoch=7,
            val_acc=val_acc(spec.round, name),
            val_digit_acc=None,
            test_acc=test,
            test_digit_acc=96.5 if VARIANTS[name].digit_loss else None,
            parameters=sum(p.numel() for p in model.parameters()),
            train_pairs=800,
            test_pairs=1000,
            wall_seconds=1.0,
        )
        prov = provenance("abc1234", now(), "cpu", "mnist")
        records.write(out, spec, RunResult(spec.config, model.eval(), [], metrics, "cpu"), prov)


@pytest.fixture(scope="module")
def exported(study_dir, tmp_path_factory):
    dest = tmp_path_factory.mktemp("export") / "weights"
    export_study(study_dir, dest, REFERENCE, repo_id="org/digitpair")
    return dest


def copy_of(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "weights")


@pytest.fixture(scope="module")
def guarded(exported, tmp_path_factory):
    """The exported folder with a guard fitted for its networks, as `fit-guard` leaves it."""
    folder = shutil.copytree(exported, tmp_path_factory.mktemp("guarded") / "weights")
    write_guard(folder)
    return folder


# --- export ------------------------------------------------------------------------------------


def test_the_reports_networks_export_beside_ours_and_load_by_name(
    study_dir, exported, tmp_path, monkeypatch
):
    """`export --setting adam_safe_fc --to weights/fc`: the report's FC-head networks in the same
    repo layout, loaded with networks="report", pushed with the rest."""
    study = Study.load(BEST_V1)
    runs = shutil.copytree(study_dir, tmp_path / "runs")
    write_fake_runs(runs, [s for s in grid(study, rounds=2) if s.setting == "adam_safe_fc"])
    weights = shutil.copytree(exported, tmp_path / "weights")
    result = runner.invoke(
        app,
        [
            "export",
            str(runs),
            "--setting",
            "adam_safe_fc",
            "--to",
            str(weights / "fc"),
            "--repo-id",
            "org/digitpair",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"--folder {weights}`" in result.output  # fc/ is pushed with the folder above
    ours, report = load_pretrained(weights), load_pretrained(weights, networks="report")
    assert list(ours) == list(report) == NAMES
    assert {n: m.head_name for n, m in report.items()} == {
        n: "fc" if n != "simple_cnn" else "order" for n in NAMES
    }
    assert all(m.head_name == "order" for m in ours.values())
    card = (weights / "fc" / "README.md").read_text()
    assert (
        "setting `adam_safe_fc`" in card
        and 'load_pretrained("org/digitpair", networks="report")' in card
    )
    write_guard(weights)  # `fit-guard` after exporting both sets
    paths = [p for p, _ in upload_files(weights, "org/digitpair")]
    assert "fc/shared_aux/model.safetensors" in paths and "shared_aux/model.safetensors" in paths
    assert set(HUB_FILES) <= set(paths)  # what a download fetches, both sets
    with pytest.raises(WeightsError, match="networks='theirs'"):
        load_pretrained(weights, networks="theirs")
    result = runner.invoke(
        app, ["export", str(runs), "--setting", "nope", "--to", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "no setting 'nope'" in result.output


def test_export_round_trip_is_bit_identical(study_dir, exported):
    models = load_pretrained(exported)
    assert list(models) == NAMES
    for name, model in models.items():
        run = load_variant(study_dir / f"adam_safe-{name}-r01")  # the best-validation run
        for seed in (1, 2):
            ours, theirs = model.predict(pairs(seed)), run.predict(pairs(seed))
            assert torch.equal(ours.p_leq, theirs.p_leq)
            assert (
                (ours.digit_probs is None)
                == (theirs.digit_probs is None)
                == (not VARIANTS[name].digit_loss)
            )
            if ours.digit_probs is not None:
                assert torch.equal(ours.digit_probs, theirs.digit_probs)
        assert all(
            torch.equal(a, b)
            for a, b in zip(model.state_dict().values(), run.state_dict().values())
        )


def test_export_writes_configs_and_cards_from_the_records(study_dir, exported):
    runs = {r.name: r for r in records.load(study_dir)}
    for name in NAMES:
        config = json.loads((exported / name / "config.json").read_text())
        record = runs[f"adam_safe-{name}-r01"]
        assert config["variant"] == name and config["run"] == f"adam_safe-{name}-r01"
        assert config["train_config"] == record.config.to_dict()
        assert config["metrics"] == record.metrics.to_dict()
        assert config["provenance"] == record.provenance.to_dict()
        summary = config["study_summary"]
        vals = [val_acc(r, name) for r in range(3)]
        assert summary["rounds"] == 3 and summary["val_acc_mean"] == pytest.approx(sum(vals) / 3)
        assert summary["test_acc_mean"] == pytest.approx((95 + 96 + 99) / 3)
        card = ModelCard.load(exported / name / "README.md")
        results = {(r.dataset_split, r.metric_name): r.metric_value for r in card.data.eval_results}
        assert results[("validation", "validation pair accuracy (%), this checkpoint")] == val_acc(
            1, name
        )
        assert results[("test", "test pair accuracy (%), this checkpoint")] == 96.0
        mean = summary["val_acc_mean"]
        row = f"| validation pair accuracy (%) | {val_acc(1, name):.1f} | {mean:.2f} ± 5.00 |"
        assert row in card.text
        assert 'digitpair.load_pretrained("org/digitpair")' in card.text
        assert cards.trained_from(read_config(exported / name / "config.json")) in card.text
    top = ModelCard.load(exported / "README.md")
    assert len(top.data.eval_results) == 5 and {r.metric_value for r in top.data.eval_results} == {
        96.67
    }
    row = next(line for line in top.text.splitlines() if line.startswith("| `shared_aux` |"))
    # study mean ± std (n - 1) of test accuracy, the exported run, and the 2020 report beside
    assert (
        "96.67 ± 2.08" in row
        and "`adam_safe-shared_aux-r01`: 92.0 / 96.0" in row
        and "86.9 ± 0.08" in row
    )
    assert "2020 report (adam, augmentation none)" in top.text and "14x14" in top.text


def test_a_card_names_the_code_its_run_trained_from():
    """A run's commit, as committed or with uncommitted changes git does not hold, or unrecorded."""
    from digitpair.core.config import UNKNOWN, Provenance

    def said(commit, dirty):
        prov = Provenance(
            commit=commit,
            dirty=dirty,
            machine=UNKNOWN,
            torch=UNKNOWN,
            device=UNKNOWN,
            started_at=UNKNOWN,
            finished_at=UNKNOWN,
        )
        return cards.trained_from(SimpleNamespace(provenance=prov))

    assert said("abc1234", False) == "Trained from commit `abc1234`, as committed."
    assert "uncommitted changes on top of commit `abc1234`" in said("abc1234", True)
    assert "not recorded" in said("abc1234", UNKNOWN) and "not recorded" in said(UNKNOWN, UNKNOWN)


def test_card_usage_loads_a_real_source_never_a_placeholder(exported, tmp_path, monkeypatch):
    from digitpair.core import checkout
    from digitpair.lab import cards

    config = read_config(exported / "shared_aux" / "config.json")
    usage = cards.variant_card(config).text.split("## Usage")[1].split("##")[0]
    assert (
        'digitpair.load_pretrained("weights")' in usage and "USER/NAME" not in usage
    )  # no repo id: the folder
    assert (
        "digitpair/core/models.py" in usage and "](" not in usage
    )  # no known source URL: named, not linked
    (tmp_path / "pyproject.toml").write_text(
        '[project.urls]\nSource = "https://example.org/digitpair"\n'
    )
    monkeypatch.setattr(checkout, "ROOT", tmp_path)
    assert checkout.source_url(tmp_path) == "https://example.org/digitpair"
    usage = cards.variant_card(config, "org/digitpair").text.split("## Usage")[1]
    assert (
        'load_pretrained("org/digitpair")' in usage
        and "[the digitpair project](https://example.org/digitpair)" in usage
    )


def test_selection_uses_validation_never_test(study_dir):
    template = records.load(study_dir)[0]

    def rec(name, round_, val, test, setting="adam_safe"):
        return dataclasses.replace(
            template,
            setting=setting,
            round=round_,
            config=dataclasses.replace(template.config, variant=name),
            metrics=dataclasses.replace(template.metrics, val_acc=val, test_acc=test),
        )

    study = Study.load(BEST_V1)
    runs = [
        rec(name, r, val, test)
        for name in NAMES
        for r, val, test in ((0, 90.0, 99.9), (1, 91.5, 80.0), (2, 91.5, 85.0), (3, 88.0, 100.0))
    ]
    runs.append(rec("shared", 0, 99.9, 99.9, setting="adam_none"))  # another setting never competes
    chosen = select_runs(runs, study)
    assert list(chosen) == NAMES
    # max val_acc (91.5) though rounds 0 and 3 test higher; the tie 1 vs 2 goes to the lowest round
    assert all(r.round == 1 and r.setting == "adam_safe" for r in chosen.values())


def test_runs_on_all_pairs_export_the_first_round_chosen_by_no_data(study_dir):
    """Without validation pairs there is nothing to choose by: the lowest round ships, whatever
    the test pairs say, and its config says so (best.toml's runs train on all their pairs)."""
    all_pairs = Study.load("train/studies/best.toml")
    assert all_pairs.settings[all_pairs.main].val_pairs == 0
    template = records.load(study_dir)[0]
    runs = [
        dataclasses.replace(
            template,
            setting=all_pairs.main,
            round=r,
            config=dataclasses.replace(
                all_pairs.settings[all_pairs.main], variant=name, data_seed=r, init_seed=100 + r
            ),
            metrics=dataclasses.replace(template.metrics, val_acc=None, test_acc=test),
        )
        for name in NAMES
        for r, test in ((2, 99.9), (0, 80.0), (1, 90.0))
    ]
    chosen = select_runs(runs, all_pairs)
    assert all(r.round == 0 for r in chosen.values())
    from digitpair.lab.publish import SELECTION_ALL_PAIRS, export_config
    from digitpair.lab.report import aggregate

    (summary,) = aggregate([chosen["shared"]], all_pairs)
    assert export_config(chosen["shared"], summary, "abc")["run_selection"] == SELECTION_ALL_PAIRS


def test_export_refuses_a_study_without_validation(study_dir, tmp_path):
    runs = [
        dataclasses.replace(r, metrics=dataclasses.replace(r.metrics, val_acc=None))
        for r in records.load(study_dir)
    ]
    with pytest.raises(PublishError, match="no validation accuracy"):
        select_runs(runs, Study.load(study_dir / "study.toml"))


def test_export_errors_name_what_is_missing(study_dir, tmp_path):
    study = shutil.copytree(study_dir, tmp_path / "best")
    (study / "adam_safe-shared-r01" / "model.safetensors").unlink()
    result = runner.invoke(app, ["export", str(study), "--to", str(tmp_path / "w")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert (
        "adam_safe-shared-r01/model.safetensors" in result.output and "gitignore" in result.output
    )
    for r in range(3):
        shutil.rmtree(study / f"adam_safe-unshared_aux-r{r:02d}")
    with pytest.raises(PublishError, match="no finished 'adam_safe' run of unshared_aux"):
        export_study(study, tmp_path / "w")
    assert not (tmp_path / "w").exists()  # nothing written by a failed export


# --- loading: corrupt files, and a Hub repo id from the HF cache -------------------------------


def test_corrupt_or_mismatched_files_name_the_file(exported, tmp_path):
    w = copy_of(exported, tmp_path)
    data = (w / "shared_aux" / "model.safetensors").read_bytes()
    (w / "shared_aux" / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    shared, unshared = (w / n / "config.json" for n in ("shared", "unshared"))
    a, b = shared.read_text(), unshared.read_text()
    shared.write_text(b), unshared.write_text(a)  # swapped configs
    shutil.rmtree(w / "simple_cnn")  # missing folder
    with pytest.raises(WeightsError, match="simple_cnn/config.json is missing"):
        load_pretrained(w)
    errors = {}
    models = load_pretrained(w, errors=errors)
    assert list(models) == ["unshared_aux"] and sorted(errors) == sorted(NAMES[:4])
    assert "shared_aux/model.safetensors is corrupt" in errors["shared_aux"]
    assert (
        "shared/config.json says 'unshared'" in errors["shared"]
        and "shared/model.safetensors" in errors["shared"]
    )
    assert "unshared/config.json says 'shared'" in errors["unshared"]


def damage_config(edit):
    def damage(folder):
        path = folder / "config.json"
        config = json.loads(path.read_text())
        path.write_text(json.dumps(edit(config)))

    return damage


def damage_tensors(edit):
    def damage(folder):
        path = folder / "model.safetensors"
        state = {k: v.clone() for k, v in load_file(path).items()}
        edit(state)
        save_file(state, path, metadata={"variant": "unshared"})

    return damage


def retype(key, dtype):
    return lambda state: state.update({key: state[key].to(dtype)})


@pytest.mark.parametrize(
    "damage, file, message",
    [
        (
            lambda f: (f / "config.json").write_bytes(b'{"variant": "unshared\xff"}'),
            "config.json",
            "not UTF-8",
        ),
        (
            lambda f: (f / "config.json").write_bytes(b'{"variant": "unsh'),
            "config.json",
            "not valid JSON",
        ),
        (
            lambda f: ((f / "config.json").unlink(), (f / "config.json").mkdir()),
            "config.json",
            "can't be read",
        ),
        (damage_config(lambda c: [c]), "config.json", "a JSON object is expected, got list"),
        (
            damage_config(lambda c: {k: v for k, v in c.items() if k != "variant"}),
            "config.json",
            "names no variant",
        ),
        (
            damage_config(lambda c: {**c, "variant": ["unshared"]}),
            "config.json",
            r"variant \['unshared'\] is not one of",
        ),
        (
            damage_config(lambda c: {**c, "encoder": {"name": "pooled"}}),
            "config.json",
            "encoder {'name': 'pooled'} is not",
        ),
        (
            damage_config(lambda c: {**c, "head": "mlp"}),
            "config.json",
            "head 'mlp' is not one of order, fc",
        ),
        (
            damage_config(lambda c: {**c, "metrics": [98.0]}),
            "config.json",
            r"metrics = \[98.0\]: a table expected",
        ),
        (
            damage_config(lambda c: {**c, "round": True}),
            "config.json",
            "round = True: a whole number expected",
        ),
        (
            damage_config(lambda c: {**c, "parameters": None}),
            "config.json",
            "parameters = None: a whole number expected",
        ),
        (
            damage_config(lambda c: {**c, "metrics": {**c["metrics"], "val_acc": "high"}}),
            "config.json",
            "metrics.val_acc = 'high': a number or null expected",
        ),
        (
            damage_config(lambda c: {**c, "study_summary": {**c["study_summary"], "rounds": 1.5}}),
            "config.json",
            "study_summary.rounds = 1.5: a whole number expected",
        ),
        (
            damage_config(
                lambda c: {
                    **c,
                    "train_config": {
                        k: v for k, v in c["train_config"].items() if k != "precision"
                    },
                }
            ),
            "config.json",
            "train_config.precision is missing",
        ),
        (
            damage_config(lambda c: {**c, "train_config": {**c["train_config"], "lr": -1}}),
            "config.json",
            "train_config: lr=-1 is out of range: lr takes a finite number > 0",
        ),
        (
            damage_config(lambda c: {**c, "provenance": "somewhere"}),
            "config.json",
            "provenance = 'somewhere': a table expected",
        ),
        (damage_config(lambda c: {**c, "parameters": 1}), "config.json", "says 1 parameters"),
        (damage_tensors(lambda s: s.pop("mean")), "model.safetensors", "no mean"),
        (
            damage_tensors(lambda s: s.update(extra=torch.zeros(1))),
            "model.safetensors",
            "unexpected extra",
        ),
        (
            damage_tensors(lambda s: s.update(mean=torch.zeros(3))),
            "model.safetensors",
            r"mean is float32 \(3,\)",
        ),
        (
            damage_tensors(retype("std", torch.int64)),
            "model.safetensors",
            r"std is int64 \(\), expected float32",
        ),
        (
            damage_tensors(retype("encoder_a.classifier.5.bias", torch.float16)),
            "model.safetensors",
            "float16",
        ),
        (
            damage_tensors(lambda s: s["encoder_b.classifier.5.bias"].fill_(float("nan"))),
            "model.safetensors",
            "NaN",
        ),
    ],
)
def test_every_damage_to_a_weights_folder_is_a_weights_error_and_the_rest_serves(
    exported, tmp_path, damage, file, message
):
    w = copy_of(exported, tmp_path)
    damage(w / "unshared")
    with pytest.raises(WeightsError, match=f"unshared/{file}.*{message}"):
        load_pretrained(w)
    errors = {}
    models = load_pretrained(w, errors=errors)
    assert list(models) == [n for n in NAMES if n != "unshared"] and list(errors) == ["unshared"]
    assert f"unshared/{file}" in errors["unshared"]


def test_every_committed_config_reads_back_typed_and_writes_the_same_text():
    """read_config loses nothing export wrote: each committed config.json, typed and written again,
    is the same text; a key that is no field is not read (a folder from elsewhere still loads)."""
    for path in sorted(Path("weights").glob(f"**/{CONFIG_NAME}")):
        config = read_config(path)
        assert isinstance(config.train_config, RunConfig) and isinstance(config.metrics, Metrics), (
            path
        )
        # >= 1: weights may be exported from round 0 while their study trains on (re-exported
        # after).
        assert config.study_summary.rounds >= 1 and config.provenance.device in ("cpu", "cuda"), (
            path
        )
        assert json.dumps(config.to_dict(), indent=2) + "\n" == path.read_text(), path


def test_a_config_key_that_is_no_field_is_not_read(exported, tmp_path):
    w = copy_of(exported, tmp_path)
    damage_config(lambda c: {**c, "note": "x", "metrics": {**c["metrics"], "device": "cpu"}})(
        w / "shared"
    )
    assert read_config(w / "shared" / CONFIG_NAME) == read_config(exported / "shared" / CONFIG_NAME)
    assert list(load_pretrained(w)) == NAMES


def flip_top_exponent_bits(path: Path, count: int = 10) -> None:
    """Set the top exponent bit of the first `count` float32 values under 1 in magnitude in the
    file's tensor data: each becomes x * 2**128, still finite, of the same dtype and shape."""
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    at = [
        8 + size + offset
        for key, info in header.items()
        if key != "__metadata__" and info["dtype"] == "F32"
        for offset in range(*info["data_offsets"], 4)
    ]
    at = [i for i in at if 0 < abs(struct.unpack_from("<f", data, i)[0]) < 1][:count]
    for i in at:
        data[i + 3] |= 0x40  # bit 30 of a little-endian float32: the exponent's top bit
    assert len(at) == count
    path.write_bytes(data)


def test_a_flipped_bit_in_tensor_data_is_named_by_the_checksum_and_the_rest_serves(
    exported, tmp_path
):
    w = copy_of(exported, tmp_path)
    flip_top_exponent_bits(w / "unshared" / "model.safetensors")
    # Well-formed damage: without the recorded hash the file loads, finite, and answers otherwise.
    unchecked = shutil.copytree(w / "unshared", tmp_path / "unchecked")
    damage_config(lambda c: {k: v for k, v in c.items() if k != "weights_sha256"})(unchecked)
    damaged = load_variant(unchecked)
    assert all(
        torch.isfinite(t).all() for t in damaged.state_dict().values() if t.is_floating_point()
    )
    assert not torch.equal(
        damaged.predict(pairs()).p_leq, load_variant(exported / "unshared").predict(pairs()).p_leq
    )
    with pytest.raises(
        WeightsError,
        match=r"unshared/model.safetensors is damaged or was replaced: its SHA-256 is "
        r"[0-9a-f]{12}\.\.\., .*unshared/config.json records [0-9a-f]{12}",
    ):
        load_pretrained(w)
    errors = {}
    assert list(load_pretrained(w, errors=errors)) == [n for n in NAMES if n != "unshared"]
    assert list(errors) == ["unshared"]
    result = runner.invoke(
        app, ["push", "--repo-id", "org/digitpair", "--dry-run", "--folder", str(w)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        f"error: {w / 'unshared' / 'model.safetensors'} is damaged or was replaced" in result.output
    )


def test_the_committed_weights_record_their_sha256_and_a_flipped_bit_is_caught(tmp_path):
    for sub in ("", "fc"):
        for name in NAMES:
            folder = Path("weights", sub, name)
            config = json.loads((folder / "config.json").read_text())
            assert config["weights_sha256"] == file_sha256(folder / "model.safetensors"), folder
    w = shutil.copytree("weights", tmp_path / "weights")
    flip_top_exponent_bits(w / "fc" / "simple_cnn" / "model.safetensors")
    errors = {}
    assert list(load_pretrained(w, networks="report", errors=errors)) == NAMES[1:]
    assert (
        list(errors) == ["simple_cnn"]
        and "fc/simple_cnn/model.safetensors is damaged" in errors["simple_cnn"]
    )


def test_the_checksum_costs_less_than_the_load():
    folder = Path("weights/unshared_aux")  # the largest committed file: five pairs of encoders

    def fastest(f) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return min(times)

    hashing, loading = (
        fastest(lambda: file_sha256(folder / "model.safetensors")),
        fastest(lambda: load_variant(folder)),
    )
    assert hashing < loading - hashing, (hashing, loading)  # the load without its check costs more


def test_export_refuses_run_weights_damaged_since_training(study_dir, tmp_path):
    study = shutil.copytree(study_dir, tmp_path / "best")
    flip_top_exponent_bits(
        study / "adam_safe-shared-r01" / "model.safetensors"
    )  # the run export would ship
    result = runner.invoke(app, ["export", str(study), "--to", str(tmp_path / "w")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "adam_safe-shared-r01/model.safetensors is damaged or was replaced" in result.output
    assert not (tmp_path / "w").exists()


def test_an_explicit_order_head_loads(exported, tmp_path):
    w = copy_of(exported, tmp_path)
    damage_config(lambda c: {**c, "head": "order"})(w / "shared")
    assert torch.equal(
        load_variant(w / "shared").predict(pairs()).p_leq,
        load_variant(exported / "shared").predict(pairs()).p_leq,
    )


def test_same_shaped_variant_swap_is_caught(exported, tmp_path):
    # shared and shared_aux have identical tensors: only the metadata in the file tells them apart.
    w = copy_of(exported, tmp_path)
    config = json.loads((w / "shared" / "config.json").read_text())
    (w / "shared" / "config.json").write_text(json.dumps({**config, "variant": "shared_aux"}))
    with pytest.raises(
        WeightsError, match="says 'shared_aux' but .*shared/model.safetensors holds 'shared'"
    ):
        load_variant(w / "shared")


def hf_cache(root, repo_id, refs: dict[str, str], snapshots: dict[str, object]):
    """The Hub cache layout: models--ORG--NAME/refs/<ref> holds a commit hash, snapshots/<hash>/ the
    files."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    for ref, commit in refs.items():
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    for commit, folder in snapshots.items():
        shutil.copytree(folder, repo / "snapshots" / commit)


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    # huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE into `constants` at import, so setting
    # the environment now is not enough: patch the constants it consults at call time too.
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_load_repo_id_offline_from_the_hf_cache(exported, offline_cache, tmp_path):
    main, v1 = "a" * 40, "b" * 40
    old = copy_of(exported, tmp_path)
    save_variant(build_model("shared"), "shared", old / "shared")  # another revision, other weights
    hf_cache(offline_cache, "org/digitpair", {"main": main, "v1": v1}, {main: exported, v1: old})
    models = load_pretrained("org/digitpair")
    reference = load_pretrained(exported)
    assert list(models) == NAMES
    for name in NAMES:
        assert torch.equal(
            models[name].predict(pairs(3)).p_leq, reference[name].predict(pairs(3)).p_leq
        )
    older = load_pretrained("org/digitpair", revision="v1")
    assert not torch.equal(
        older["shared"].predict(pairs(3)).p_leq, models["shared"].predict(pairs(3)).p_leq
    )
    with pytest.raises(
        WeightsError, match=r"org/missing is not a local folder.*not in the Hugging Face cache"
    ):
        load_pretrained("org/missing")
    with pytest.raises(WeightsError, match="revision 'v2'"):
        load_pretrained("org/digitpair", revision="v2")
    with pytest.raises(WeightsError, match="neither a folder"):
        load_pretrained(str(tmp_path / "nowhere"))


# --- push ----------------------------------------------------------------------------------------


@pytest.fixture
def hub_calls(monkeypatch):
    """HfApi's network methods replaced by recorders; records the token each call's client had."""
    calls = []

    def recorder(method, result=None):
        def record(self, *args, **kwargs):
            calls.append((method, self.token, args, kwargs))
            return result

        return record

    monkeypatch.setattr(HfApi, "create_repo", recorder("create_repo"))
    monkeypatch.setattr(HfApi, "create_branch", recorder("create_branch"))
    monkeypatch.setattr(
        HfApi,
        "upload_folder",
        recorder(
            "upload_folder",
            SimpleNamespace(commit_url="https://huggingface.co/org/digitpair/commit/c0ffee"),
        ),
    )
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    return calls


def test_push_uploads_the_folder_in_one_commit(guarded, hub_calls):
    exported = guarded
    result = runner.invoke(
        app,
        [
            "push",
            "--repo-id",
            "org/digitpair",
            "--folder",
            str(exported),
            "--private",
            "--revision",
            "dev",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [c[0] for c in hub_calls] == ["create_repo", "create_branch", "upload_folder"]
    assert all(token == FAKE_TOKEN for _, token, _, _ in hub_calls)
    assert hub_calls[0][2:] == (
        ("org/digitpair",),
        {"repo_type": "model", "private": True, "exist_ok": True},
    )
    assert hub_calls[1][2:] == (("org/digitpair",), {"branch": "dev", "exist_ok": True})
    upload = hub_calls[2][3]
    commit = json.loads((exported / "shared" / "config.json").read_text())["commit"]
    assert upload["repo_id"] == "org/digitpair" and upload["folder_path"] == str(exported)
    assert upload["revision"] == "dev"
    assert upload["commit_message"] == (
        f"digitpair weights: study best, setting adam_safe, commit {commit} "
        "(simple_cnn, shared, shared_aux, unshared, unshared_aux)"
    )
    assert (
        "shared_aux: run adam_safe-shared_aux-r01, validation 92.0 %, test 96.0 %"
        in upload["commit_description"]
    )
    assert sorted(upload["allow_patterns"]) == sorted(
        ["README.md", "guard/model.safetensors", "guard/guard.json"]
        + [f"{n}/{f}" for n in NAMES for f in ("model.safetensors", "config.json", "README.md")]
    )
    assert "commit/c0ffee" in result.output and FAKE_TOKEN not in result.output


def test_push_dry_run_lists_files_without_network(guarded, hub_calls):
    exported = guarded
    result = runner.invoke(
        app, ["push", "--repo-id", "org/digitpair", "--folder", str(exported), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert hub_calls == []
    size = (exported / "unshared" / "model.safetensors").stat().st_size
    assert f"{size:>10,}  unshared/model.safetensors" in result.output
    assert "a token is available" in result.output and "nothing was uploaded" in result.output
    assert FAKE_TOKEN not in result.output and "warning" not in result.output
    other = runner.invoke(
        app, ["push", "--repo-id", "someone/else", "--folder", str(exported), "--dry-run"]
    )
    assert "re-export with --repo-id someone/else" in other.output


def http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


def not_json():
    """What HfApi raises when a server answers 200 with a page that is not JSON."""
    try:
        httpx2.Response(200, text="<html>Sign in to the Wi-Fi</html>").json()
    except ValueError as e:
        return e


@pytest.mark.parametrize(
    "error, message",
    [
        (http_error(403), "may not write to org/digitpair (HTTP 403)"),
        (http_error(401), "rejected the token (HTTP 401)"),
        (httpx2.ConnectError("Name or service not known"), "can't reach the Hugging Face Hub"),
        (not_json(), "answered with something that is not the Hub's JSON"),
    ],
)
def test_push_failures_are_clear(guarded, hub_calls, monkeypatch, error, message):
    exported = guarded

    def refuse(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    result = runner.invoke(app, ["push", "--repo-id", "org/digitpair", "--folder", str(exported)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert message in result.output and FAKE_TOKEN not in result.output
    assert hub_calls == []


def test_push_without_token_or_with_a_broken_folder_stops_before_the_hub(
    guarded, hub_calls, monkeypatch, tmp_path
):
    exported = guarded
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    result = runner.invoke(app, ["push", "--repo-id", "org/digitpair", "--folder", str(exported)])
    assert result.exit_code == 2 and "no Hugging Face token" in result.output
    w = copy_of(exported, tmp_path)
    (w / "unshared" / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(WeightsError, match="unshared/model.safetensors is corrupt"):
        push(w, "org/digitpair")
    (w / "README.md").unlink()
    with pytest.raises(PublishError, match="README.md"):
        upload_files(w, "org/digitpair")
    with pytest.raises(PublishError, match="not a Hub repo id"):
        upload_files(exported, "no repo id")
    assert hub_calls == []


def test_push_refuses_weights_without_their_guard(exported, tmp_path):
    """Weights are published with the guard fitted for them, or not at all: without it the page
    would not judge drawings."""
    with pytest.raises(PublishError, match=r"guard.json is missing.*fit-guard --weights"):
        upload_files(exported, "org/digitpair")
    w = copy_of(exported, tmp_path)
    write_guard(w)
    save_variant(build_model("shared_aux"), "shared_aux", w / "shared_aux")  # exported later
    with pytest.raises(PublishError, match=r"for other 'ours' networks than these \(shared_aux\)"):
        upload_files(w, "org/digitpair")


def test_commit_message_names_study_commit_and_variants(exported):
    summary, description = commit_message(exported)
    assert summary.startswith("digitpair weights: study best, setting adam_safe, commit ")
    assert all(f"- {n}: run adam_safe-{n}-r01" in description for n in NAMES)
