"""Ensembles: k networks of one variant as one module; saved in one file; trained by train_run."""

import json
from dataclasses import replace

import pytest
import torch

from digitpair.core.config import RunConfig
from digitpair.core.models import VARIANTS, Ensemble, StackedEnsemble, build_model, count_members
from digitpair.core.stacking import stack
from digitpair.core.weights import WeightsError, load_variant, save_variant
from digitpair.lab.provenance import now, provenance
from digitpair.lab.training import train_run


def pairs(seed: int = 0) -> torch.Tensor:
    return torch.rand(32, 2, 14, 14, generator=torch.Generator().manual_seed(seed)) * 255


def ensemble(name: str, k: int = 3) -> Ensemble:
    members = []
    for i in range(k):
        torch.manual_seed(100 + i)
        m = build_model(name)
        m.set_normalization(pairs(i))
        members.append(m.eval())
    return Ensemble(members).eval()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_predict_is_the_mean_of_the_members(name):
    model, x = ensemble(name), pairs(7)
    ours, theirs = model.predict(x), [m.predict(x) for m in model.members]
    if VARIANTS[name].digit_loss:
        probs = torch.stack([p.digit_probs for p in theirs]).mean(0)
        torch.testing.assert_close(
            ours.digit_probs, probs, atol=1e-7, rtol=1e-6
        )  # the mean (log, then softmax)
        leq = torch.ones(10, 10).triu()
        direct = torch.einsum(
            "ni,nj,ij->n", probs[:, 0], probs[:, 1], leq
        )  # sum_{i<=j} p_a(i) p_b(j)
        torch.testing.assert_close(ours.p_leq, direct, atol=1e-6, rtol=1e-5)
    else:
        assert ours.digit_probs is None
        torch.testing.assert_close(
            ours.p_leq, torch.stack([p.p_leq for p in theirs]).mean(0), atol=1e-7, rtol=1e-6
        )
    with torch.inference_mode():
        out = model(x)  # what evaluate() reads
    torch.testing.assert_close(out.pair_logits.softmax(1)[:, 1], ours.p_leq, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        model.predict(torch.zeros(2, 1, 14, 14))  # checked as one network's input


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("encoder", ["pooled", "padded", "strided"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_stacked_members_answer_as_the_ensemble_does(name, encoder, layout):
    members = []
    for i in range(3):
        torch.manual_seed(200 + i)
        m = build_model(name, encoder)
        m.set_normalization(pairs(i))
        for bn in (b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_()  # statistics of their own: each member's must reach it
            bn.running_var.uniform_(0.5, 2)
        members.append(m)
    model = Ensemble(members).eval()
    stacked = StackedEnsemble(model).to(memory_format=layout)
    x = pairs(7)
    ours, theirs = stacked.predict(x), model.predict(x)
    torch.testing.assert_close(ours.p_leq, theirs.p_leq, atol=1e-6, rtol=1e-5)
    if VARIANTS[name].digit_loss:
        torch.testing.assert_close(ours.digit_probs, theirs.digit_probs, atol=1e-6, rtol=1e-5)
    else:
        assert ours.digit_probs is None
    assert count_members(stacked) == count_members(model) == 3
    assert not any(m.training for m in stacked.modules())  # it only answers
    assert stacked.head_name == model.head_name and stacked.encoder_name == encoder
    with pytest.raises(ValueError, match="shape"):
        stacked.predict(torch.zeros(2, 1, 14, 14))  # checked as the ensemble's input


def test_stacked_layers_compute_each_networks_own_outputs():
    def chain(seed):
        torch.manual_seed(seed)
        layers = [
            torch.nn.Conv2d(2, 4, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(4 * 3 * 3, 5, bias=False),
            torch.nn.ReLU(),
            torch.nn.Linear(5, 3),
        ]
        layers[1].running_mean.normal_()  # statistics of its own: each network's must reach it
        layers[1].running_var.uniform_(0.5, 2)
        return torch.nn.Sequential(*layers).eval()

    chains = [chain(seed) for seed in range(3)]
    x = torch.randn(4, 3, 2, 6, 6)  # (N, k, C, H, W): network i reads x[:, i]
    stacked = stack([list(c) for c in chains])(x.flatten(1, 2))  # (k, N, 3)
    for i, c in enumerate(chains):
        torch.testing.assert_close(stacked[i], c(x[:, i]), atol=1e-5, rtol=1e-5)


def test_only_networks_of_one_shape_and_known_layers_stack():
    narrow, wide = build_model("simple_cnn", "pooled"), build_model("simple_cnn", "padded")
    with pytest.raises(ValueError, match="one shape"):
        stack([list(narrow.encoder.features), list(wide.encoder.features)])
    with pytest.raises(ValueError, match="one shape"):
        stack([list(narrow.encoder.features), list(narrow.encoder.features)[:-1]])
    with pytest.raises(ValueError, match="one shape"):
        stack([[torch.nn.Conv2d(1, 4, 3, padding=1)], [torch.nn.Conv2d(1, 4, 3)]])  # same weights
    with pytest.raises(TypeError, match="GELU"):
        stack([[torch.nn.GELU()], [torch.nn.GELU()]])


@pytest.mark.parametrize("name", ["shared_aux", "unshared"])
def test_save_load_round_trip_is_bit_identical(name, tmp_path):
    model = ensemble(name)
    save_variant(model, name, tmp_path / name)
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["members"] == 3 and config["variant"] == name
    loaded = load_variant(tmp_path / name)
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 3
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b) and all(
        k.startswith(("members.0.", "members.1.", "members.2.")) for k in a
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    x = pairs(3)
    pa, pb = model.predict(x), loaded.predict(x)
    assert torch.equal(pa.p_leq, pb.p_leq)
    config["members"] = 2  # a config that does not match the file is refused
    (tmp_path / name / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="does not match"):
        load_variant(tmp_path / name)
    config["members"] = 0
    (tmp_path / name / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="members"):
        load_variant(tmp_path / name)


def test_single_models_save_members_1(tmp_path):
    save_variant(build_model("shared").eval(), "shared", tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["members"] == 1
    assert not isinstance(load_variant(tmp_path), Ensemble)


def test_refuses_mixed_members_and_other_heads():
    with pytest.raises(ValueError, match="one variant, encoder and head"):
        Ensemble([build_model("shared_aux"), build_model("shared_aux", "padded")])
    with pytest.raises(ValueError, match="one variant"):
        Ensemble([])
    fc = [build_model("shared_aux", head="fc") for _ in range(2)]  # a learned comparison head each
    with pytest.raises(ValueError, match="one variant, encoder and head"):
        Ensemble([build_model("shared_aux"), fc[0]])
    # check_build's message: one rule for configs, loaders and the Ensemble itself
    with pytest.raises(
        ValueError, match="members=2 with head='fc': an ensemble averages digit distributions"
    ):
        Ensemble(fc)
    with pytest.raises(
        ValueError, match="members=1 with head='fc'"
    ):  # even one: it would answer by the order rule
        Ensemble(fc[:1])


def test_members_2_train_run(tiny):
    """Reproducible; member i is the single run with init_seed + i; the final metrics are the
    ensemble's."""
    cfg = RunConfig(
        variant="shared_aux",
        members=2,
        epochs=2,
        n_pairs=100,
        val_pairs=20,
        batch_size=20,
        test=False,
        data_seed=0,
        init_seed=1,
    )
    a, b = train_run(cfg, tiny), train_run(cfg, tiny)
    assert isinstance(a.model, Ensemble) and len(a.model.members) == 2
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values())
    )
    single = train_run(RunConfig(**{**cfg.to_dict(), "members": 1, "init_seed": 2}), tiny)
    assert all(
        torch.equal(x, y)
        for x, y in zip(
            a.model.members[1].state_dict().values(), single.model.state_dict().values()
        )
    )
    assert a.metrics.test_acc is None and 0 <= a.metrics.val_acc <= 100
    assert a.metrics.member_val_acc[
        1
    ] == single.metrics.val_acc and a.metrics.member_selected_epochs == [2, 2]
    assert {r["member"] for r in a.history} == {0, 1} and len(a.history) == 4
    with pytest.raises(ValueError, match="differ"):
        RunConfig(members=3, data_seed=2, init_seed=1)  # member 1 would take the data seed


def test_an_ensembles_record_keeps_its_members_metrics(tiny, tmp_path):
    """What each member selected and scored on validation reaches the run's record; a single run's
    record has no member fields at all (older records keep their bytes)."""
    from digitpair.lab import records
    from digitpair.lab.records import RunSpec

    cfg = RunConfig(
        variant="shared_aux",
        members=2,
        epochs=2,
        n_pairs=100,
        val_pairs=20,
        batch_size=20,
        test=False,
        data_seed=0,
        init_seed=1,
    )
    result = train_run(cfg, tiny)
    prov = provenance("abc1234", now(), "cpu", tiny.source)
    folder = records.write(tmp_path, RunSpec("s", "e2", 0, cfg), result, prov)
    record = records.read_run(folder)
    assert record.metrics == result.metrics and record.metrics.member_selected_epochs == [2, 2]
    loaded = records.load_model(tmp_path, record)  # as benchmarks read a study's networks again
    x = tiny.round(0, 100, 20, 0).train.input[:8]
    torch.testing.assert_close(loaded.predict(x).p_leq, result.model.predict(x).p_leq)
    single = replace(cfg, members=1)
    folder = records.write(tmp_path, RunSpec("s", "e1", 0, single), train_run(single, tiny), prov)
    assert "member_val_acc" not in records.read_run(folder).to_dict()["metrics"]


def test_run_config_refuses_an_fc_head_ensemble():
    with pytest.raises(ValueError, match="order head"):
        RunConfig(variant="shared_aux", head="fc", members=3)
