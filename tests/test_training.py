import re

import pytest
import torch
from typer.testing import CliRunner

from digitpair.core.config import FIELD_TYPES, RunConfig
from digitpair.core.weights import load_variant, read_config
from digitpair.lab.cli import app
from digitpair.lab.training import pick_device, train_run


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer"):
        RunConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="differ"):
        RunConfig(data_seed=3, init_seed=3)
    with pytest.raises(ValueError, match="val_pairs"):
        RunConfig(selection="best_val")  # selection needs validation pairs
    with pytest.raises(ValueError, match="encoder"):
        RunConfig(encoder="wide")
    with pytest.raises(ValueError, match="head='fc'; choose one of order"):
        RunConfig(variant="simple_cnn", head="fc")  # compares in code: no pair head to swap
    assert (
        RunConfig.from_dict({"variant": "shared"}).head == "order"
    )  # records from before the head
    assert RunConfig(variant="shared", head="fc").head == "fc"
    with pytest.raises(ValueError, match="head"):
        RunConfig(head="mlp")
    with pytest.raises(ValueError, match="unknown config keys"):
        RunConfig.from_dict({"model": "shared"})  # the variant's one name is `variant`
    assert not RunConfig().test  # single runs never see the test pairs
    assert (
        RunConfig.from_dict({"variant": "shared"}).encoder == "pooled"
    )  # study files: the default
    cfg = RunConfig(variant="shared")
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert not cfg.uses_swap  # no digit labels -> no swapping
    assert RunConfig(variant="shared_aux").uses_swap


def test_every_numeric_field_has_a_range_checked_in_one_place():
    """Just outside each end of each range: refused, the message naming the field and the range;
    floats must be finite besides."""
    ranges = RunConfig().ranges()
    assert set(ranges) == {field for field, kind in FIELD_TYPES.items() if kind in (int, float)}
    for field, allowed in ranges.items():
        step = 1 if FIELD_TYPES[field] is int else 0.5
        outside = [allowed.low if allowed.low_open else allowed.low - step]
        if allowed.high != float("inf"):
            outside.append(allowed.high if allowed.high_open else allowed.high + step)
        if FIELD_TYPES[field] is float:
            outside += [float("nan"), float("inf"), float("-inf")]
        for value in outside:
            with pytest.raises(
                ValueError,
                match=rf"^{field}=.* is out of range: {field} takes .*{re.escape(str(allowed))}$",
            ):
                RunConfig(**{field: value})
    with pytest.raises(ValueError, match="epochs = 'ten': a whole number expected"):
        RunConfig(
            epochs="ten"
        )  # a study file's string: a type error, never a comparison's traceback
    with pytest.raises(ValueError, match="swap = 1: true or false expected"):
        RunConfig(swap=1)
    assert RunConfig(lr=1).lr == 1  # an integer is a number


@pytest.mark.parametrize("variant", ["shared", "unshared_aux"])
def test_fc_head_trains_and_round_trips(tiny, variant, tmp_path):
    from digitpair.core.weights import save_variant

    cfg = RunConfig(variant=variant, head="fc", epochs=2, n_pairs=100, val_pairs=20, batch_size=20)
    result = train_run(cfg, tiny)
    assert result.model.head_name == "fc" and result.metrics.parameters % 2 == 0
    save_variant(result.model, variant, tmp_path, train_config=cfg, metrics=result.metrics)
    loaded = load_variant(tmp_path)
    assert loaded.head_name == "fc"
    for (
        key,
        value,
    ) in result.model.state_dict().items():  # bit-identical weights; outputs differ only by
        assert torch.equal(
            loaded.state_dict()[key], value
        )  # the trained copy's channels_last kernels
    x = tiny.round(0, 10, 0).test.input
    torch.testing.assert_close(loaded.predict(x).p_leq, result.model.predict(x).p_leq)


def test_run_is_reproducible(tiny):
    cfg = RunConfig(variant="unshared_aux", epochs=2, n_pairs=100, val_pairs=20, batch_size=20)
    a, b = train_run(cfg, tiny), train_run(cfg, tiny)
    assert a.history == [{**r, "seconds": a.history[i]["seconds"]} for i, r in enumerate(b.history)]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
@pytest.mark.parametrize("augmentation", ["seed", "none"])
def test_optimizers_and_augmentations_run(tiny, optimizer, augmentation):
    cfg = RunConfig(
        variant="shared",
        optimizer=optimizer,
        augmentation=augmentation,
        epochs=1,
        n_pairs=100,
        val_pairs=0,
        selection="last",
        schedule="constant",
        test=True,
    )
    metrics = train_run(cfg, tiny).metrics
    assert metrics.val_acc is None and metrics.selected_epoch == 1 and 0 <= metrics.test_acc <= 100


def test_bf16_autocast_trains_with_fp32_logits(tiny):
    cfg = RunConfig(
        variant="unshared_aux",
        epochs=2,
        n_pairs=100,
        val_pairs=20,
        batch_size=20,
        precision="bf16",
        test=True,
    )
    result = train_run(cfg, tiny)
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.history)
    assert 0 <= result.metrics.test_acc <= 100
    assert all(
        p.dtype == torch.float32 for p in result.model.parameters()
    )  # master weights stay fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = result.model(tiny.round(0, 10, 0).test.input)
    assert (
        out.pair_logits.dtype == out.digit_logits.dtype == torch.float32
    )  # head and losses in fp32
    with pytest.raises(ValueError, match="precision"):
        RunConfig(precision="fp16")


def test_shared_aux_learns_real_pairs(mnist):
    """Integration: a short run on real MNIST pairs is far above chance (~55 % by majority
    class)."""
    cfg = RunConfig(
        variant="shared_aux", epochs=8, val_pairs=200, data_seed=11, init_seed=12, test=True
    )
    metrics = train_run(cfg, mnist).metrics
    assert metrics.test_acc > 80 and metrics.test_digit_acc > 75
    assert metrics.train_pairs == 800 and metrics.test_pairs == 1000


def test_cli_train_saves_a_loadable_model(mnist, tmp_path, monkeypatch):
    import os

    from tests.conftest import SHARED

    monkeypatch.setenv("DIGITPAIR_DATA", os.environ.get("DIGITPAIR_DATA") or str(SHARED))
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--variant",
            "simple_cnn",
            "--set",
            "epochs=1",
            "--save",
            str(tmp_path / "simple_cnn"),
        ],
    )
    assert result.exit_code == 0, result.output
    # best's main setting: all 1000 pairs train (no validation accuracy) and, best being final, the
    # test pairs are scored once, as the study's own run of that round does.
    assert '"variant": "simple_cnn"' in result.output and "test pair accuracy" in result.output
    assert (
        "validation pair accuracy" not in result.output and "no validation pairs" in result.output
    )
    model = load_variant(tmp_path / "simple_cnn")
    assert model.predict(torch.zeros(1, 2, 14, 14)).digit_probs.shape == (1, 2, 10)
    saved = read_config(tmp_path / "simple_cnn" / "config.json")
    assert (
        saved.provenance.device == str(pick_device()) and saved.provenance.data == "mnist"
    )  # where and on what it trained
    assert saved.provenance.started_at <= saved.provenance.finished_at


def test_cli_missing_data_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITPAIR_DATA", str(tmp_path))
    monkeypatch.setattr(
        "digitpair.core.data._download",
        lambda root, train: (_ for _ in ()).throw(
            __import__("digitpair").DataError(f"MNIST not found under {root}")
        ),
    )
    result = CliRunner().invoke(app, ["train", "--set", "epochs=1"])
    assert (
        result.exit_code == 2
        and "MNIST not found" in result.output
        and "Traceback" not in result.output
    )
