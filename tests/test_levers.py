"""The issue-13 levers of RunConfig: off by default (training as before), each changes something
when on."""

import dataclasses

import pytest
import torch

from digitpair.core.config import RunConfig
from digitpair.lab.training import evaluate, train_run

# Small runs on the synthetic fixture; never the test pairs.
SMALL = dict(epochs=2, n_pairs=100, val_pairs=20, batch_size=20, test=False)


def params(model) -> list[torch.Tensor]:
    return [t for t in model.state_dict().values()]


def same_run(a, b) -> bool:
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    return strip(a.history) == strip(b.history) and all(
        torch.equal(x, y) for x, y in zip(params(a.model), params(b.model))
    )


def test_levers_default_off(tiny):
    """Explicit defaults are the default config and train the same network, bit for bit."""
    defaults = dict(label_smoothing=0.0, ema=0.0, val_fold=0, tta=0, members=1)
    assert {
        f.name: f.default for f in dataclasses.fields(RunConfig) if f.name in defaults
    } == defaults
    a = train_run(RunConfig(variant="shared_aux", **SMALL), tiny)
    b = train_run(RunConfig(variant="shared_aux", **SMALL, **defaults), tiny)
    assert same_run(a, b)


def test_val_fold_zero_is_the_last_slice_and_folds_partition(tiny):
    whole = tiny.round(5, 100, 0).train
    fold0 = tiny.round(5, 100, 20)
    assert torch.equal(fold0.train.input, whole.input[:80]) and torch.equal(
        fold0.val.input, whole.input[80:]
    )
    seen = []
    for k in range(5):
        rnd = tiny.round(5, 100, 20, val_fold=k)
        assert len(rnd.train) == 80 and torch.equal(
            rnd.val.input, whole.input[80 - 20 * k : 100 - 20 * k]
        )
        assert torch.equal(
            torch.cat((rnd.train.input, rnd.val.input)).sort(0).values, whole.input.sort(0).values
        )
        seen.append(rnd.val.input)
    assert torch.equal(torch.cat(seen[::-1]), whole.input)  # every pair validates exactly once
    with pytest.raises(ValueError, match="val_fold"):
        RunConfig(n_pairs=1000, val_pairs=200, val_fold=5)
    with pytest.raises(ValueError, match="val_fold"):
        RunConfig(val_pairs=0, selection="last", val_fold=1)
    other = train_run(RunConfig(variant="shared_aux", val_fold=2, **SMALL), tiny)
    assert not same_run(other, train_run(RunConfig(variant="shared_aux", **SMALL), tiny))


def test_label_smoothing_changes_the_loss(tiny):
    base = train_run(RunConfig(variant="shared_aux", **SMALL), tiny)
    smooth = train_run(RunConfig(variant="shared_aux", label_smoothing=0.1, **SMALL), tiny)
    losses = torch.tensor([r["train_loss"] for r in smooth.history])
    assert torch.isfinite(losses).all() and not same_run(base, smooth)
    assert smooth.history[0]["train_loss"] != base.history[0]["train_loss"]
    with pytest.raises(ValueError, match="label_smoothing"):
        RunConfig(label_smoothing=1.0)


def test_ema_averages_without_changing_training(tiny):
    """The raw weights train exactly as without EMA; what is kept is their average, buffers
    included."""
    cfg = dict(SMALL, val_pairs=0, selection="last", epochs=3)
    raw = train_run(RunConfig(variant="shared_aux", **cfg), tiny)
    ema = train_run(RunConfig(variant="shared_aux", ema=0.9, **cfg), tiny)
    assert [r["train_loss"] for r in raw.history] == [r["train_loss"] for r in ema.history]
    state_raw, state_ema = raw.model.state_dict(), ema.model.state_dict()
    assert state_raw.keys() == state_ema.keys()  # a plain PairNet, exportable as before
    assert all(torch.isfinite(v.float()).all() for v in state_ema.values())
    assert not torch.equal(
        state_raw["encoder.features.0.weight"], state_ema["encoder.features.0.weight"]
    )
    assert not torch.equal(
        state_raw["encoder.features.2.running_mean"], state_ema["encoder.features.2.running_mean"]
    )
    assert torch.equal(state_raw["mean"], state_ema["mean"])  # constant buffers stay put
    selected = train_run(RunConfig(variant="shared_aux", ema=0.9, **SMALL), tiny)
    assert selected.metrics.val_acc is not None and 1 <= selected.metrics.selected_epoch <= 2


def test_elastic_trains(tiny):
    safe = train_run(RunConfig(variant="shared_aux", **SMALL), tiny)
    elastic = train_run(RunConfig(variant="shared_aux", augmentation="elastic", **SMALL), tiny)
    assert RunConfig(augmentation="elastic").uses_swap
    assert all(
        torch.isfinite(torch.tensor(r["train_loss"])) for r in elastic.history
    ) and not same_run(safe, elastic)


@pytest.mark.parametrize("variant", ["shared_aux", "shared"])
def test_tta_averages_views_at_evaluation_only(tiny, variant):
    run = train_run(RunConfig(variant=variant, **SMALL), tiny)
    val = tiny.round(0, 100, 20).val
    plain, again = evaluate(run.model, val), evaluate(run.model, val, tta=0)
    assert plain == again
    a, b = evaluate(run.model, val, tta=4), evaluate(run.model, val, tta=4)
    assert a == b and 0 <= a["pair_acc"] <= 100  # the same views every call
    with_tta = train_run(RunConfig(variant=variant, tta=2, **SMALL), tiny)
    # Training is untouched: the same weights at every epoch, only the validation scores differ.
    assert [r["train_loss"] for r in with_tta.history] == [r["train_loss"] for r in run.history]
    with pytest.raises(ValueError, match="tta"):
        RunConfig(tta=-1)
