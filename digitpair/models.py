"""The five variants of the study, top to bottom as in its architecture table.

Every variant maps a pair image (N, 2, 14, 14), raw 0-255, to the same `PairOutput`:
pair logits (N, 2) over {first > second, first <= second} and digit logits (N, 2, 10), or
None for the variants that are never told what a digit is. The two experimental factors are
structure, not flags: weight sharing is one `Encoder` called twice; no sharing is two encoders
of the same shape. The auxiliary loss is a training factor, listed beside each variant in
`VARIANTS` (the registry, in the study's table order).

All four pair networks share one comparison head, `order_logits`, with no parameters:
P(a <= b) = sum_{i <= j} p_a(i) p_b(j), from each digit's 10-way distribution. It keeps the
digit information a fully connected head on concatenated logits throws away, which is why
careful work on this task reaches ~98 % where an FC head stalls near 92 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_SHAPE = (2, 14, 14)


class PairOutput(NamedTuple):
    pair_logits: torch.Tensor           # (N, 2): index 1 = "first <= second"
    digit_logits: torch.Tensor | None   # (N, 2, 10), or None without a digit head


class Prediction(NamedTuple):
    p_leq: torch.Tensor                 # (N,) P(first <= second)
    digit_probs: torch.Tensor | None    # (N, 2, 10), or None


# --- the encoder: one 14x14 digit -> 10 logits ----------------------------------------------
# Three conv trunks, compared on validation pairs (train/studies/tuning.toml, and paired over the
# 15 rounds of `best` in benchmarks/README.md). `pooled` is the default; `padded` is the trunk
# the first studies ran with, `strided` a cheaper one rejected on validation accuracy. Their
# records name theirs (RunConfig.encoder).

def pooled_trunk(c1: int = 32, c2: int = 32) -> nn.Sequential:
    """0.53 M multiply-adds a digit. Each max-pool comes straight after its convolution, so batch
    norm and ReLU run on a quarter of the values: on a CPU those memory-bound ops, not the
    convolutions, took most of a training step (benchmarks/README.md). ReLU commutes with max;
    batch norm now normalises the pooled map."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.MaxPool2d(2),                 # (N, c1, 7, 7)
        nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.MaxPool2d(2),                # (N, c2, 3, 3)
        nn.BatchNorm2d(c2), nn.ReLU(),
    )


def padded_trunk(c1: int = 32, c2: int = 64) -> nn.Sequential:
    """1.0 M multiply-adds a digit: two 'same'-padded conv blocks at 14x14 and 7x7."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),    # (N, c1, 14, 14)
        nn.MaxPool2d(2),                                                              # (N, c1, 7, 7)
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(),   # (N, c2, 7, 7)
        nn.MaxPool2d(2),                                                              # (N, c2, 3, 3)
    )


def strided_trunk(c1: int = 32, c2: int = 64) -> nn.Sequential:
    """0.32 M multiply-adds a digit: a stride-2 first convolution instead of conv + max-pool, no
    padding. The fastest, but 0.2-1.8 points below `padded` on validation over `best`'s 15 rounds
    (train/runs/best-strided): not used."""
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, stride=2, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),        # (N, c1, 6, 6)
        nn.Conv2d(c1, c2, 3, bias=False),                                                 # (N, c2, 4, 4)
        nn.MaxPool2d(2), nn.BatchNorm2d(c2), nn.ReLU(),                                   # (N, c2, 2, 2)
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
            nn.Flatten(),                                                                 # (N, features)
            nn.Dropout(dropout),
            nn.Linear(features, hidden), nn.ReLU(),                                       # (N, hidden)
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),                                                        # (N, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Logits leave in fp32: a no-op in fp32, and under bf16 autocast (RunConfig.precision) the
        # comparison head and the losses stay in full precision.
        return self.classifier(self.features(x)).float()


# --- the comparison head ---------------------------------------------------------------------

_LEQ = torch.ones(10, 10).triu().bool()   # _LEQ[i, j] = i <= j


def order_logits(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(N, 10), (N, 10) -> (N, 2) log-probabilities [log P(a > b), log P(a <= b)].

    Log-probabilities are valid logits: softmax of them gives back the probabilities, so the
    pair cross-entropy is exactly -log P(target). Computed with logsumexp, stable at any scale.
    """
    joint = F.log_softmax(logits_a, 1)[:, :, None] + F.log_softmax(logits_b, 1)[:, None, :]  # (N, 10, 10)
    leq = _LEQ.to(joint.device)
    log_leq = joint.masked_fill(~leq, float("-inf")).flatten(1).logsumexp(1)   # (N,)
    log_gt = joint.masked_fill(leq, float("-inf")).flatten(1).logsumexp(1)     # (N,)
    return torch.stack((log_gt, log_leq), dim=1)


# --- the variants ----------------------------------------------------------------------------

class PairNet(nn.Module):
    """Base: raw 0-255 input, normalisation as a buffer (training statistics), `predict`."""

    def __init__(self, encoder: str):
        super().__init__()
        self.encoder_name = encoder   # which ENCODERS trunk: saved beside the weights
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

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> Prediction:
        """x: (N, 2, 14, 14) float, raw 0-255 -> P(first <= second) and digit probabilities."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"predict expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"predict expects shape (N, 2, 14, 14), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"predict expects a floating-point tensor of raw 0-255 pixels, got {x.dtype}")
        if not torch.isfinite(x).all():
            raise ValueError("predict got NaN or infinite pixels")
        was_training = self.training
        self.eval()
        try:
            out = self(x.to(self.mean.device, torch.float32))
        finally:
            self.train(was_training)
        digits = None if out.digit_logits is None else out.digit_logits.softmax(-1)
        return Prediction(p_leq=out.pair_logits.softmax(1)[:, 1], digit_probs=digits)


class SharedNet(PairNet):
    """Siamese: ONE encoder applied to both digits, then the comparison head.

    `simple_cnn` and `shared_aux` expose the encoder's logits as digit logits (they are trained
    to be digits); `shared` hides them (they are whatever ordering code the pair loss finds).
    """

    def __init__(self, digit_outputs: bool, encoder: str):
        super().__init__(encoder)
        self.encoder = Encoder(encoder)
        self.digit_outputs = digit_outputs

    def forward(self, x: torch.Tensor) -> PairOutput:
        a, b = self.split(x)
        # The one encoder sees both digits as one batch of 2N: half the kernel launches of two
        # calls, and BatchNorm normalises digits in either position with the same statistics.
        la, lb = self.encoder(torch.cat((a, b))).chunk(2)                    # (N, 10) each
        digits = torch.stack((la, lb), 1) if self.digit_outputs else None    # (N, 2, 10)
        return PairOutput(order_logits(la, lb), digits)


class UnsharedNet(PairNet):
    """Two encoders of the same shape, one per position, no parameter in common."""

    def __init__(self, digit_outputs: bool, encoder: str):
        super().__init__(encoder)
        self.encoder_a, self.encoder_b = Encoder(encoder), Encoder(encoder)
        self.digit_outputs = digit_outputs

    def forward(self, x: torch.Tensor) -> PairOutput:
        a, b = self.split(x)
        la, lb = self.encoder_a(a), self.encoder_b(b)                        # (N, 10) each
        digits = torch.stack((la, lb), 1) if self.digit_outputs else None    # (N, 2, 10)
        return PairOutput(order_logits(la, lb), digits)


@dataclass(frozen=True)
class Variant:
    build: Callable[[str], PairNet]   # encoder name -> module
    pair_loss: bool    # trained on the <= target
    digit_loss: bool   # trained on the digit classes (auxiliary loss, or the only loss)
    description: str


# The registry, in the study's table order. The CLI, the reports, the app and the tests iterate it.
VARIANTS: dict[str, Variant] = {
    "simple_cnn": Variant(lambda enc: SharedNet(True, enc), pair_loss=False, digit_loss=True,
                          description="a digit classifier applied to each digit; <= computed from the two digit distributions"),
    "shared": Variant(lambda enc: SharedNet(False, enc), pair_loss=True, digit_loss=False,
                      description="siamese: one encoder for both digits, trained on the <= target only"),
    "shared_aux": Variant(lambda enc: SharedNet(True, enc), pair_loss=True, digit_loss=True,
                          description="siamese + auxiliary digit losses"),
    "unshared": Variant(lambda enc: UnsharedNet(False, enc), pair_loss=True, digit_loss=False,
                        description="two separate encoders, trained on the <= target only"),
    "unshared_aux": Variant(lambda enc: UnsharedNet(True, enc), pair_loss=True, digit_loss=True,
                            description="two separate encoders + auxiliary digit losses"),
}


def build_model(name: str, encoder: str = DEFAULT_ENCODER) -> PairNet:
    if name not in VARIANTS:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}")
    if encoder not in ENCODERS:
        raise KeyError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    return VARIANTS[name].build(encoder)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
