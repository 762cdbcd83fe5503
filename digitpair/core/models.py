"""The five variants of the study, top to bottom as in its architecture section.

Every variant maps a pair image (N, 2, 14, 14), raw 0-255, to the same `PairOutput`:
pair logits (N, 2) over {first > second, first <= second} and digit logits (N, 2, 10), or
None for the variants that are never told what a digit is. The experimental factors are
structure, not flags: weight sharing is one `Encoder` called twice; no sharing is two encoders
of the same shape; the comparison is a head module you can name (`HEADS`). The auxiliary loss
is a training factor, listed beside each variant in `VARIANTS` (the registry, in the study's
table order).

Two comparison heads, from the two 10-way outputs of the sub-networks to the pair logits:
- `order` (ours, no parameters): P(a <= b) = sum_{i <= j} p_a(i) p_b(j) from each digit's
  10-way distribution. It keeps the digit information and knows the order of the classes.
- `fc` (the 2020 report's, its section 2.2): "an additional fully connected layer" on the two
  sub-networks' outputs, here nn.Linear(20, 2) on the concatenated (N, 10) logits. The report
  leaves open what the layer reads (logits or probabilities) and whether a nonlinearity comes
  first: raw logits, no nonlinearity, is the plainest reading, and what is built here. The
  layer has to learn the order of the classes from the pair targets alone.
`simple_cnn` has no pair head: it is a digit classifier whose two digit distributions are
compared in code, with the `order` rule, under either head (as the report's was).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .stacking import stack

IMAGE_SHAPE = (2, 14, 14)
# Pairs per forward pass in `PairNet.predict`: a pass holds 50-100 kB of activations a pair.
PREDICT_CHUNK = 1024


class PairOutput(NamedTuple):
    pair_logits: torch.Tensor  # (N, 2): index 1 = "first <= second"
    digit_logits: torch.Tensor | None  # (N, 2, 10), or None without a digit head


class Prediction(NamedTuple):
    p_leq: torch.Tensor  # (N,) P(first <= second)
    digit_probs: torch.Tensor | None  # (N, 2, 10), or None


# --- the encoder: one 14x14 digit -> 10 logits ----------------------------------------------
# Three conv trunks, compared on validation pairs (train/studies/tuning.toml, and paired over the
# 15 rounds of `best` in benchmarks/README.md). `pooled` is the default; `padded` is the trunk
# the first studies ran with, `strided` a cheaper one rejected on validation accuracy. Their
# records name theirs (RunConfig.encoder).


def pooled_trunk(c1: int = 32, c2: int = 32) -> nn.Sequential:
    """0.53 M multiply-adds a digit. Each max-pool comes straight after its convolution, so batch
    norm and ReLU run on a quarter of the values: on a CPU those memory-bound ops, not the
    convolutions, took most of a training step (benchmarks/README.md). ReLU commutes with max, so
    the one difference from conv-BN-ReLU-pool is that batch norm's statistics are the pooled
    map's."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False),
        nn.MaxPool2d(2),  # (N, c1, 7, 7)
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False),
        nn.MaxPool2d(2),  # (N, c2, 3, 3)
        nn.BatchNorm2d(c2),
        nn.ReLU(),
    )


def padded_trunk(c1: int = 32, c2: int = 64) -> nn.Sequential:
    """1.0 M multiply-adds a digit: two 'same'-padded conv blocks at 14x14 and 7x7."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False),
        nn.BatchNorm2d(c1),
        nn.ReLU(),  # (N, c1, 14, 14)
        nn.MaxPool2d(2),  # (N, c1, 7, 7)
        nn.Conv2d(c1, c2, 3, padding=1, bias=False),
        nn.BatchNorm2d(c2),
        nn.ReLU(),  # (N, c2, 7, 7)
        nn.MaxPool2d(2),  # (N, c2, 3, 3)
    )


def strided_trunk(c1: int = 32, c2: int = 64) -> nn.Sequential:
    """0.32 M multiply-adds a digit: a stride-2 first convolution instead of conv + max-pool, no
    padding. The fastest, but 0.2-1.8 points below `padded` on validation over `best`'s 15 rounds
    (train/runs/evidence/best-strided): not used."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, stride=2, bias=False),
        nn.BatchNorm2d(c1),
        nn.ReLU(),  # (N, c1, 6, 6)
        nn.Conv2d(c1, c2, 3, bias=False),  # (N, c2, 4, 4)
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c2),
        nn.ReLU(),  # (N, c2, 2, 2)
    )


# name -> (trunk, its output features)
ENCODERS: dict[str, tuple[Callable[[], nn.Sequential], int]] = {
    "pooled": (pooled_trunk, 32 * 3 * 3),
    "padded": (padded_trunk, 64 * 3 * 3),
    "strided": (strided_trunk, 64 * 2 * 2),
}
DEFAULT_ENCODER = "pooled"


class Encoder(nn.Module):
    """A small CNN for one 14x14 digit (in: (N, 1, 14, 14) normalised; out: (N, 10) logits).

    A conv trunk from `ENCODERS` and a two-layer classifier (28,778 parameters with `pooled`,
    56,490 with `padded`). Kept lean on purpose: a study trains it thousands of times on 2 CPU
    cores, and with 800 training pairs accuracy is bound by data, not capacity (train/results/).
    """

    def __init__(self, trunk: str, hidden: int = 64, dropout: float = 0.25):
        super().__init__()
        build_trunk, features = ENCODERS[trunk]
        self.features = build_trunk()
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (N, features)
            nn.Dropout(dropout),
            nn.Linear(features, hidden),
            nn.ReLU(),  # (N, hidden)
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),  # (N, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Logits leave in fp32: a no-op in fp32, and under bf16 autocast (RunConfig.precision) the
        # comparison head and the losses stay in full precision.
        return self.classifier(self.features(x)).float()


# --- the comparison heads: two (N, 10) digit outputs -> (N, 2) pair logits -------------------

_LEQ = torch.ones(10, 10).triu().bool()  # _LEQ[i, j] = i <= j


def order_logits(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(N, 10), (N, 10) -> (N, 2) log-probabilities [log P(a > b), log P(a <= b)].

    Log-probabilities are valid logits: softmax of them gives back the probabilities, so the
    pair cross-entropy is exactly -log P(target). Computed with logsumexp, stable at any scale.
    """
    joint = (
        F.log_softmax(logits_a, 1)[:, :, None] + F.log_softmax(logits_b, 1)[:, None, :]
    )  # (N, 10, 10)
    leq = _LEQ.to(joint.device)
    log_leq = joint.masked_fill(~leq, float("-inf")).flatten(1).logsumexp(1)  # (N,)
    log_gt = joint.masked_fill(leq, float("-inf")).flatten(1).logsumexp(1)  # (N,)
    return torch.stack((log_gt, log_leq), dim=1)


class OrderHead(nn.Module):
    """Ours: the probability that digit a <= digit b, from the two digit distributions. No
    parameters."""

    def forward(self, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
        return order_logits(logits_a, logits_b)  # (N, 2)


class FCHead(nn.Module):
    """The 2020 report's: one fully connected layer on the two concatenated outputs, 42
    parameters."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2 * 10, 2)

    def forward(self, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat((logits_a, logits_b), 1))  # (N, 20) -> (N, 2)


HEADS: dict[str, Callable[[], nn.Module]] = {"order": OrderHead, "fc": FCHead}
DEFAULT_HEAD = "order"


# --- the variants ----------------------------------------------------------------------------


class PairNet(nn.Module):
    """Base: raw 0-255 input, normalisation as a buffer (training statistics), the outputs of two
    digits' logits, `predict`. `digit_outputs`: the logits are returned as digit logits (the
    variant is trained on the digit classes, `Variant.digit_loss`)."""

    def __init__(self, digit_outputs: bool, encoder: str, head: str):
        super().__init__()
        self.encoder_name, self.head_name = (
            encoder,
            head,
        )  # which trunk and head: saved beside the weights
        self.digit_outputs = digit_outputs
        # Set from the training pairs by `set_normalization`; saved with the weights, so exported
        # models take raw 0-255 pixels like the course's data.
        self.register_buffer("mean", torch.tensor(0.0))
        self.register_buffer("std", torch.tensor(1.0))

    def set_normalization(self, train_input: torch.Tensor) -> None:
        self.mean.fill_(train_input.mean())
        self.std.fill_(train_input.std())

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2, 14, 14) raw -> two (N, 1, 14, 14) normalised digits."""
        x = (x - self.mean) / self.std
        return x[:, 0:1], x[:, 1:2]

    def outputs(self, la: torch.Tensor, lb: torch.Tensor) -> PairOutput:
        """The two digits' (N, 10) logits -> the head's pair logits, and the digit logits if
        exposed."""
        digits = torch.stack((la, lb), 1) if self.digit_outputs else None  # (N, 2, 10)
        return PairOutput(self.head(la, lb), digits)

    def predict(self, x: torch.Tensor, chunk: int = PREDICT_CHUNK) -> Prediction:
        """x: (N, 2, 14, 14) float, raw 0-255 pixels -> P(first <= second) and digit probabilities
        (see `predict`)."""
        return predict(self, x, chunk)


class SharedNet(PairNet):
    """Siamese: ONE encoder applied to both digits, then the comparison head.

    `simple_cnn` and `shared_aux` expose the encoder's logits as digit logits (they are trained
    to be digits); `shared` hides them (they are whatever code the pair loss finds).
    """

    def __init__(self, digit_outputs: bool, encoder: str, head: str):
        super().__init__(digit_outputs, encoder, head)
        self.encoder = Encoder(encoder)
        self.head = HEADS[head]()

    def forward(self, x: torch.Tensor) -> PairOutput:
        a, b = self.split(x)
        # The one encoder sees both digits as one batch of 2N: half the kernel launches of two
        # calls, and BatchNorm normalises digits in either position with the same statistics.
        la, lb = self.encoder(torch.cat((a, b))).chunk(2)  # (N, 10) each
        return self.outputs(la, lb)


class UnsharedNet(PairNet):
    """Two encoders of the same shape, one per position, no parameter in common; then the head."""

    def __init__(self, digit_outputs: bool, encoder: str, head: str):
        super().__init__(digit_outputs, encoder, head)
        self.encoder_a, self.encoder_b = Encoder(encoder), Encoder(encoder)
        self.head = HEADS[head]()

    def forward(self, x: torch.Tensor) -> PairOutput:
        a, b = self.split(x)
        la, lb = self.encoder_a(a), self.encoder_b(b)  # (N, 10) each
        return self.outputs(la, lb)


@dataclass(frozen=True)
class Variant:
    net: type[PairNet]  # the architecture: SharedNet or UnsharedNet
    pair_loss: bool  # trained on the <= target, through its comparison head
    digit_loss: bool  # trained on the digit classes (auxiliary loss, or the only loss)
    description: str

    def build(self, encoder: str, head: str) -> PairNet:
        # The digits are outputs exactly where they are trained to be digits.
        return self.net(self.digit_loss, encoder, head)

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads it can be built with: a variant trained without the pair loss has no head to
        learn, and compares its digit distributions in code."""
        return tuple(HEADS) if self.pair_loss else (DEFAULT_HEAD,)


# The registry, in the study's table order. The CLI, the reports, the app and the tests iterate it.
VARIANTS: dict[str, Variant] = {
    "simple_cnn": Variant(
        SharedNet,
        pair_loss=False,
        digit_loss=True,
        description="a digit classifier applied to each digit; <= computed from the two digit "
        "distributions",
    ),
    "shared": Variant(
        SharedNet,
        pair_loss=True,
        digit_loss=False,
        description="siamese: one encoder for both digits, trained on the <= target only",
    ),
    "shared_aux": Variant(
        SharedNet, pair_loss=True, digit_loss=True, description="siamese + auxiliary digit losses"
    ),
    "unshared": Variant(
        UnsharedNet,
        pair_loss=True,
        digit_loss=False,
        description="two separate encoders, trained on the <= target only",
    ),
    "unshared_aux": Variant(
        UnsharedNet,
        pair_loss=True,
        digit_loss=True,
        description="two separate encoders + auxiliary digit losses",
    ),
}


def check_build(
    variant: str, encoder: str = DEFAULT_ENCODER, head: str = DEFAULT_HEAD, members: int = 1
) -> None:
    """The one rule of which networks exist, checked by every config, builder and loader: a variant
    of VARIANTS, an encoder of ENCODERS, a head the variant takes (`Variant.heads`), and for an
    ensemble (members > 1) the order head, since an Ensemble applies the order rule to its members'
    averaged digit distributions. A ValueError names the field: "head='fc'; choose one of order"."""
    heads = VARIANTS[variant].heads if variant in VARIANTS else tuple(HEADS)
    for field, value, choices in (
        ("variant", variant, VARIANTS),
        ("encoder", encoder, ENCODERS),
        ("head", head, heads),
    ):
        if value not in choices:
            raise ValueError(f"{field}={value!r}; choose one of {', '.join(choices)}")
    if members > 1:
        check_ensemble(head, members)


def check_ensemble(head: str, members: int) -> None:
    """An Ensemble (what members > 1 builds) of `members` networks with `head`: it applies the order
    rule to their averaged digit distributions, so they take the order head. Checked by check_build
    for configs and by the Ensemble of the networks it is given."""
    if head != "order":
        raise ValueError(
            f"members={members} with head={head!r}: an ensemble averages digit "
            "distributions under the order head"
        )


def build_model(name: str, encoder: str = DEFAULT_ENCODER, head: str = DEFAULT_HEAD) -> PairNet:
    check_build(name, encoder, head)
    return VARIANTS[name].build(encoder, head)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_pixels(x: torch.Tensor) -> None:
    """Raw pixels are what the networks were trained on (`mnist_to_pairs`, the app's drawings):
    x is (N, 2, 14, 14) float, every value in [0, 255], and every digit image with any ink peaking
    above 1. Anything else raises ValueError (TypeError for a non-float): images scaled to 0-1 (a
    digit peaking at or below 1; the networks would answer them, at 52.6 % pair accuracy instead
    of 98.3 %), normalised ones (negative values), 16-bit ones (above 255). An all-zero (blank)
    image is accepted."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"predict expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"predict expects shape (N, 2, 14, 14), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"predict expects a floating-point tensor of raw 0-255 pixels, got {x.dtype}"
        )
    if not torch.isfinite(x).all():
        raise ValueError("predict got NaN or infinite pixels")
    if len(x) and (x.min() < 0 or x.max() > 255.5):  # half a grey level of slack for float rounding
        raise ValueError(
            f"predict expects raw 0-255 pixels, got values in [{float(x.min()):.4g}, "
            f"{float(x.max()):.4g}] (normalised, or 16-bit?)"
        )
    peaks = x.amax((2, 3))  # (N, 2)
    scaled = ((peaks > 0) & (peaks <= 1)).nonzero()
    if len(scaled):
        pair, digit = scaled[0].tolist()
        raise ValueError(
            f"predict expects raw 0-255 pixels, but digit {digit} of pair {pair} peaks at "
            f"{float(peaks[pair, digit]):.3g} ({len(scaled)} such images): scaled to 0-1? "
            "multiply by 255"
        )


def in_eval(model: nn.Module, fn: Callable, x: torch.Tensor, chunk: int) -> list:
    """fn (model's forward or one of its methods) on x, `chunk` pairs at a time, `model` in eval
    mode (each module put back as it was): memory stays bounded (about 100 MB at the default) for
    any N. A served model is in eval mode already and is left as it is: `train()` walks every
    module (130 in an ensemble of five) through nn.Module.__setattr__, twice a call, a quarter of
    an app request's time (benchmarks/bench_app.py)."""
    training = [m for m in model.modules() if m.training]
    device = next(model.parameters()).device
    for m in training:
        m.training = False
    try:
        return [fn(part.to(device, torch.float32)) for part in x.split(chunk)]
    finally:
        for m in training:
            m.training = True


def prediction(outs: list[PairOutput]) -> Prediction:
    """The outputs of consecutive chunks of pairs -> one Prediction."""
    p_leq = torch.cat([out.pair_logits.softmax(1)[:, 1] for out in outs])
    digits = (
        None
        if outs[0].digit_logits is None
        else torch.cat([out.digit_logits.softmax(-1) for out in outs])
    )
    return Prediction(p_leq=p_leq, digit_probs=digits)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, chunk: int = PREDICT_CHUNK) -> Prediction:
    """`model` (a PairNet or an Ensemble) on x: (N, 2, 14, 14) float, raw 0-255 pixels
    (`check_pixels`) -> P(first <= second) and digit probabilities. A pair's answer is the same in
    any batch up to float rounding, not bit for bit: the CPU's kernels may sum in another order
    for another batch size (tests/test_models.py checks chunked against whole)."""
    check_pixels(x)
    return prediction(in_eval(model, model, x, chunk))


# --- ensembles: k networks of one variant, one model -----------------------------------------


def average_outputs(outs: list[PairOutput]) -> PairOutput:
    """Several outputs for the same pairs -> one: the mean digit distributions compared by the order
    rule, or, without digit outputs, the mean P(a <= b). Log-probabilities, valid logits."""
    if outs[0].digit_logits is None:
        return mean_pairs(torch.stack([o.pair_logits for o in outs]))
    return mean_digits(torch.stack([o.digit_logits for o in outs]))


def mean_pairs(pair_logits: torch.Tensor) -> PairOutput:
    """(k, N, 2) members' pair logits -> their mean P(a <= b), as log-probabilities."""
    return PairOutput(pair_logits.softmax(-1).mean(0).log(), None)  # (N, 2)


def mean_digits(digit_logits: torch.Tensor) -> PairOutput:
    """(k, N, 2, 10) members' digit logits -> their mean digit distributions, compared by the order
    rule."""
    log_p = digit_logits.softmax(-1).mean(0).log()  # (N, 2, 10)
    return PairOutput(order_logits(log_p[:, 0], log_p[:, 1]), log_p)


def count_members(model: nn.Module) -> int:
    """How many networks answer: an Ensemble's members, stacked or not, else 1."""
    if isinstance(model, StackedEnsemble):
        return model.k
    return len(model.members) if isinstance(model, Ensemble) else 1


class Ensemble(nn.Module):
    """k trained networks of one variant (`members`, an nn.ModuleList: their state_dict keys are
    prefixed `members.<i>.`). The members' digit distributions are averaged, then compared by
    the order rule: P(a <= b) = sum_{i <= j} p̄_a(i) p̄_b(j). For variants without digit outputs
    (shared, unshared) the members' P(a <= b) are averaged. Only for order-head networks: a
    learned comparison head is not the order rule applied to the averaged distributions.
    """

    def __init__(self, members: list[PairNet]):
        super().__init__()
        names = {(type(m), m.encoder_name, m.head_name, m.digit_outputs) for m in members}
        if not members or len(names) != 1:
            raise ValueError(
                "an Ensemble needs one or more networks of one variant, encoder and head"
            )
        check_ensemble(members[0].head_name, len(members))
        self.members = nn.ModuleList(members)
        self.encoder_name, self.head_name = (
            members[0].encoder_name,
            members[0].head_name,
        )  # saved beside the weights

    def forward(self, x: torch.Tensor) -> PairOutput:
        return average_outputs([m(x) for m in self.members])

    def predict(self, x: torch.Tensor, chunk: int = PREDICT_CHUNK) -> Prediction:
        """x: (N, 2, 14, 14) raw 0-255 -> P(first <= second) from the members' mean digit
        distributions, which it returns (`forward`, checked and chunked as a single network's)."""
        return predict(self, x, chunk)


# --- answering: an ensemble's members stacked --------------------------------------------------


class StackedEnsemble(nn.Module):
    """An Ensemble's k members as one network, to answer with (core/stacking.py): each encoder
    layer's k copies (2k for two encoders a member) run as one, a grouped convolution or a
    batched matrix product. The same answers as the Ensemble's up to float rounding, in a
    third of its time for one pair of five members on a CPU (`python benchmarks/serving.py`);
    not for training. The members' digit logits, or their order-head pair logits without digit
    outputs, are averaged as `Ensemble.forward` averages them."""

    def __init__(self, ensemble: Ensemble):
        super().__init__()
        members = list(ensemble.members)
        self.k, self.encoder_name, self.head_name = (
            len(members),
            ensemble.encoder_name,
            ensemble.head_name,
        )  # as the Ensemble's
        self.shared = isinstance(members[0], SharedNet)  # one encoder a member, else two
        self.digit_outputs = members[0].digit_outputs
        encoders = (
            [m.encoder for m in members]
            if self.shared
            else [m.encoder_a for m in members] + [m.encoder_b for m in members]
        )
        self.encoders = stack([[*e.features, *e.classifier] for e in encoders])
        self.register_buffer("mean", torch.stack([m.mean for m in members]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.stack([m.std for m in members]).view(1, -1, 1, 1))
        self.eval()  # only answers: `predict` then has no module to switch to eval mode

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2, 14, 14) raw -> each member's two digits' logits, (k, N, 10) each."""
        # (N, k, 14, 14) each: every member's normalisation of the digit
        first, second = ((x[:, i : i + 1] - self.mean) / self.std for i in (0, 1))
        if self.shared:  # one encoder a member sees both digits, as SharedNet's does: (2N, k, ...)
            out = self.encoders(torch.cat((first, second)))  # (k, 2N, 10)
            return out.chunk(2, 1)
        out = self.encoders(torch.cat((first, second), 1))  # (2k, N, 10)
        return out[: self.k], out[self.k :]

    def forward(self, x: torch.Tensor) -> PairOutput:
        la, lb = self.logits(x)
        if self.digit_outputs:
            return mean_digits(torch.stack((la, lb), 2))  # (k, N, 2, 10)
        return mean_pairs(
            order_logits(la.flatten(0, 1), lb.flatten(0, 1)).unflatten(0, (self.k, -1))
        )

    def predict(self, x: torch.Tensor, chunk: int = PREDICT_CHUNK) -> Prediction:
        """As `Ensemble.predict`."""
        return predict(self, x, chunk)
