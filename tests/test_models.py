import json

import pytest
import torch

from digitpair.core.config import RunConfig
from digitpair.core.models import (
    ENCODERS,
    HEADS,
    VARIANTS,
    PairOutput,
    build_model,
    check_build,
    count_parameters,
    order_logits,
)
from digitpair.core.weights import WeightsError, load_variant, load_weights, save_variant
from digitpair.guard.pretrained import load_pretrained
from digitpair.lab.training import loss_fn

NAMES = list(VARIANTS)
# Every buildable (variant, encoder, head): simple_cnn compares in code and takes only the order
# head.
over_registry = pytest.mark.parametrize(
    "name, encoder, head",
    [(n, e, h) for e in ENCODERS for n, v in VARIANTS.items() for h in v.heads],
)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 14, 14, generator=g) * 255
    classes = torch.randint(0, 10, (n, 2), generator=g)
    return x, (classes[:, 0] <= classes[:, 1]).long(), classes


def test_registry_order():
    assert NAMES == ["simple_cnn", "shared", "shared_aux", "unshared", "unshared_aux"]


@over_registry
def test_output_shapes_and_finite(name, encoder, head):
    model = build_model(name, encoder, head)
    out = model(batch()[0])
    assert isinstance(out, PairOutput)
    assert out.pair_logits.shape == (8, 2) and torch.isfinite(out.pair_logits).all()
    if VARIANTS[name].digit_loss:
        assert out.digit_logits.shape == (8, 2, 10) and torch.isfinite(out.digit_logits).all()
    else:
        assert out.digit_logits is None


@over_registry
def test_every_parameter_gets_a_gradient(name, encoder, head):
    model = build_model(name, encoder, head)
    x, target, classes = batch()
    loss_fn(VARIANTS[name], model(x), target, classes, aux_weight=1.0).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("encoder", ENCODERS)
def test_shared_really_shares_and_unshared_does_not(encoder):
    shared, unshared = build_model("shared", encoder), build_model("unshared", encoder)
    # One encoder called twice: parameters of one encoder only.
    assert count_parameters(shared) == count_parameters(shared.encoder)
    assert count_parameters(unshared) == 2 * count_parameters(shared)
    ids_a = {id(p) for p in unshared.encoder_a.parameters()}
    assert not ids_a & {id(p) for p in unshared.encoder_b.parameters()}
    # Swapping the digits swaps the shared encoder's outputs exactly.
    shared_aux = build_model("shared_aux", encoder).eval()
    x = batch()[0]
    with torch.no_grad():
        d, d_swapped = shared_aux(x).digit_logits, shared_aux(x.flip(1)).digit_logits
    torch.testing.assert_close(d, d_swapped.flip(1))


def test_order_head_is_exact_on_one_hot():
    big = 50.0
    a = torch.nn.functional.one_hot(torch.arange(10).repeat_interleave(10), 10).float() * big
    b = torch.nn.functional.one_hot(torch.arange(10).repeat(10), 10).float() * big
    p = order_logits(a, b).softmax(1)[:, 1]
    expected = (torch.arange(10).repeat_interleave(10) <= torch.arange(10).repeat(10)).float()
    torch.testing.assert_close(p, expected, atol=1e-6, rtol=0)
    # Uniform digits: P(a <= b) = 55/100.
    torch.testing.assert_close(
        order_logits(torch.zeros(1, 10), torch.zeros(1, 10)).exp()[0, 1], torch.tensor(0.55)
    )


def test_fc_head_is_the_reports_one_linear_layer_on_both_outputs():
    head = HEADS["fc"]()
    assert [tuple(p.shape) for p in head.parameters()] == [(2, 20), (2,)]
    la, lb = torch.randn(4, 10), torch.randn(4, 10)
    torch.testing.assert_close(
        head(la, lb), torch.cat((la, lb), 1) @ head.fc.weight.T + head.fc.bias
    )
    assert not list(HEADS["order"]().parameters())


@pytest.mark.parametrize("encoder", ENCODERS)
def test_fc_head_keeps_sharing_one_encoder(encoder):
    shared, unshared = build_model("shared", encoder, "fc"), build_model("unshared", encoder, "fc")
    encoder_params = count_parameters(shared.encoder)
    assert count_parameters(shared) == encoder_params + 42  # one encoder + Linear(20, 2)
    assert count_parameters(unshared) == 2 * encoder_params + 42
    assert count_parameters(build_model("shared", encoder, "order")) == encoder_params


@pytest.mark.parametrize(
    "variant, encoder, head, members, message",
    [
        ("resnet", "pooled", "order", 1, "variant='resnet'; choose one of simple_cnn, shared"),
        ("shared", "wide", "order", 1, "encoder='wide'; choose one of "),
        ("simple_cnn", "pooled", "fc", 1, "head='fc'; choose one of order$"),
        ("shared", "pooled", "mlp", 1, "head='mlp'; choose one of order, fc$"),
        (
            "shared_aux",
            "pooled",
            "fc",
            3,
            "members=3 with head='fc': an ensemble averages digit distributions",
        ),
    ],
)
def test_one_build_rule_for_configs_builders_and_loaders(
    tmp_path, variant, encoder, head, members, message
):
    with pytest.raises(ValueError, match=message):
        check_build(variant, encoder, head, members)
    with pytest.raises(ValueError, match=message):
        RunConfig(variant=variant, encoder=encoder, head=head, members=members)
    with pytest.raises(WeightsError, match=f"config.json: {message}"):  # before the file is read
        load_weights(
            tmp_path / "missing.safetensors", variant, encoder, head, members, "config.json"
        )
    if members == 1:
        with pytest.raises(ValueError, match=message):
            build_model(variant, encoder, head)
    check_build(
        variant if variant in VARIANTS else "shared", "pooled", "order", members
    )  # the rest is buildable


def test_simple_cnn_has_no_pair_head_to_swap():
    assert VARIANTS["simple_cnn"].heads == ("order",)
    with pytest.raises(ValueError, match="head='fc'; choose one of order$"):
        build_model("simple_cnn", head="fc")


def test_weights_from_before_the_head_was_named_load_as_order(tmp_path):
    model = build_model("shared_aux").eval()
    save_variant(model, "shared_aux", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["head"] == "order"
    del config["head"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert load_variant(tmp_path).head_name == "order"
    fc = build_model("shared_aux", head="fc").eval()
    save_variant(fc, "shared_aux", tmp_path / "fc")
    (tmp_path / "fc" / "config.json").write_text(
        json.dumps(config)
    )  # an fc model whose config says nothing
    with pytest.raises(WeightsError, match="does not match"):
        load_variant(tmp_path / "fc")


@over_registry
def test_save_load_identical(name, encoder, head, tmp_path):
    model = build_model(name, encoder, head)
    model.set_normalization(batch()[0])
    model.eval()
    save_variant(
        model,
        name,
        tmp_path / name,
        train_config=RunConfig(variant=name, encoder=encoder, head=head),
    )
    loaded = load_variant(tmp_path / name)
    x = batch(seed=1)[0]
    assert torch.equal(model.predict(x).p_leq, loaded.predict(x).p_leq)
    assert torch.equal(loaded.mean, model.mean) and torch.equal(loaded.std, model.std)
    assert loaded.encoder_name == encoder and loaded.head_name == head
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_weights_config_must_name_its_encoder(tmp_path):
    model = build_model("shared_aux", "padded").eval()
    save_variant(model, "shared_aux", tmp_path)
    x = batch()[0]
    assert torch.equal(load_variant(tmp_path).predict(x).p_leq, model.predict(x).p_leq)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["encoder"]  # never guessed: train/migrate_records.py added it where missing
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="config.json names no encoder"):
        load_variant(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "encoder": "wide"}))
    with pytest.raises(WeightsError, match="encoder 'wide'"):
        load_variant(tmp_path)


def test_load_pretrained_registry_order_and_partial_failure(tmp_path):
    for name in reversed(NAMES):
        save_variant(build_model(name), name, tmp_path / name)
    assert list(load_pretrained(tmp_path)) == NAMES
    (tmp_path / "shared" / "model.safetensors").write_bytes(b"not safetensors")
    errors = {}
    models = load_pretrained(tmp_path, errors=errors)
    assert "shared" not in models and len(models) == 4
    assert "shared/model.safetensors" in errors["shared"]


def test_predict_outputs_and_mode():
    model = build_model("shared_aux")
    model.train()
    pred = model.predict(batch()[0])
    assert model.training  # predict restores the mode
    model.eval()
    model.encoder.train()  # mixed modes: each module comes back as it was
    again = model.predict(batch()[0])
    assert not model.training and model.encoder.training and model.encoder.classifier[1].training
    torch.testing.assert_close(
        again.p_leq, pred.p_leq
    )  # in eval mode both times: dropout off, BN's running stats
    assert pred.p_leq.shape == (8,) and ((pred.p_leq >= 0) & (pred.p_leq <= 1)).all()
    torch.testing.assert_close(pred.digit_probs.sum(-1), torch.ones(8, 2))
    assert build_model("shared").predict(batch()[0]).digit_probs is None


def test_predict_in_chunks_equals_one_pass_with_bounded_batches():
    model = build_model("unshared_aux").eval()
    x = batch(50, seed=2)[0]
    x[3] = 0  # a blank pair is raw pixels too
    batches = []
    model.encoder_a.register_forward_hook(lambda module, args, out: batches.append(len(args[0])))
    whole, chunked = model.predict(x, chunk=len(x)), model.predict(x, chunk=16)
    assert batches == [50, 16, 16, 16, 2]
    torch.testing.assert_close(chunked.p_leq, whole.p_leq)
    torch.testing.assert_close(chunked.digit_probs, whole.digit_probs)
    assert build_model("shared").predict(x, chunk=16).digit_probs is None


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.zeros(4, 1, 14, 14), ValueError, r"\(N, 2, 14, 14\)"),
        (torch.zeros(2, 14, 14), ValueError, r"\(N, 2, 14, 14\)"),
        (torch.zeros(4, 2, 28, 28), ValueError, r"\(N, 2, 14, 14\)"),
        (torch.zeros(4, 2, 14, 14, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.full((1, 2, 14, 14), float("nan")), ValueError, "NaN"),
        (batch()[0] / 255, ValueError, "digit 0 of pair 0 peaks at .* scaled to 0-1"),
        (
            torch.cat((batch()[0], batch(seed=1)[0] / 255)),
            ValueError,
            r"digit 0 of pair 8 .*\(16 such images\)",
        ),
        (batch()[0] - 128, ValueError, r"values in \[-128, .*normalised"),
        (batch()[0] * 257, ValueError, "raw 0-255"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_predict_rejects_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        build_model("simple_cnn").predict(bad)
