"""One run: a frozen config in, per-epoch records and final metrics out. A flat loop, no framework.

Protocol (one round of the study): draw fresh pairs with `data_seed`, initialise with
`init_seed`, train, pick the epoch with the best validation accuracy (validation pairs are
carved from the training pairs), then evaluate that checkpoint on the test pairs once.
`selection="last"` reproduces the 2020 report, which trained on all 1000 pairs and reported
the last epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .augment import AUGMENTATIONS, augment
from .data import MNIST, PairSet
from .models import (DEFAULT_ENCODER, ENCODERS, VARIANTS, PairNet, Variant, build_model,
                     count_parameters)

OPTIMIZERS = ("adam", "sgd", "rmsprop")


@dataclass(frozen=True)
class RunConfig:
    variant: str = "shared_aux"
    encoder: str = DEFAULT_ENCODER  # the conv trunk, see ENCODERS in digitpair/models.py
    head: str = "order"          # "order" | "fc": how the pair decision is read off the two digits
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0        # sgd / rmsprop only; the report used the torch defaults (0)
    batch_size: int = 100
    epochs: int = 120
    schedule: str = "cosine"     # "constant" | "cosine" (cosine annealing to 0 over the epochs)
    weight_decay: float = 0.0
    aux_weight: float = 1.0      # loss = pair CE + aux_weight * (CE digit a + CE digit b)
    precision: str = "fp32"      # "fp32" | "bf16": autocast convolutions and matmuls to bfloat16
    augmentation: str = "safe"   # "none" | "seed" | "safe", see digitpair/augment.py
    swap: bool = True            # with "safe": swap the digits; only where digit labels are trained
    n_pairs: int = 1000          # pairs per split, as generate_pair_sets(1000)
    val_pairs: int = 200         # carved from the training pairs for selection
    selection: str = "best_val"  # "best_val" | "last"
    test: bool = False           # score the test pairs once, after selection: final studies only
    data_seed: int = 0
    init_seed: int = 1

    def __post_init__(self):
        checks = {
            "variant": (self.variant in VARIANTS, list(VARIANTS)),
            "encoder": (self.encoder in ENCODERS, list(ENCODERS)),
            "head": (self.head in ("order", "fc"), ("order", "fc")),
            "optimizer": (self.optimizer in OPTIMIZERS, OPTIMIZERS),
            "augmentation": (self.augmentation in AUGMENTATIONS, AUGMENTATIONS),
            "schedule": (self.schedule in ("constant", "cosine"), ("constant", "cosine")),
            "selection": (self.selection in ("best_val", "last"), ("best_val", "last")),
            "precision": (self.precision in ("fp32", "bf16"), ("fp32", "bf16")),
        }
        for field, (ok, choices) in checks.items():
            if not ok:
                raise ValueError(f"{field}={getattr(self, field)!r}; choose one of {', '.join(choices)}")
        if self.selection == "best_val" and self.val_pairs == 0:
            raise ValueError("selection='best_val' needs val_pairs > 0")
        if self.data_seed == self.init_seed:
            raise ValueError("data_seed and init_seed must differ (they seed different things)")

    @property
    def uses_swap(self) -> bool:
        # Swapping recomputes the target from the classes: only for variants that see classes.
        return self.swap and self.augmentation == "safe" and VARIANTS[self.variant].digit_loss

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)

    def pretty(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device):
    """bf16: convolutions and matmuls in bfloat16 (CPUs with AVX512-BF16/AMX, GPU tensor cores);
    parameters, optimizer state and losses stay fp32 (mixed precision, Micikevicius et al., 2018).
    On this project's CPU a training run is ~1.3x faster, at accuracy parity (benchmarks/README.md)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(cfg: RunConfig, model: PairNet) -> torch.optim.Optimizer:
    params, kw = model.parameters(), dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=cfg.momentum, **kw)
    return torch.optim.RMSprop(params, momentum=cfg.momentum, **kw)


def loss_fn(variant: Variant, out, target: torch.Tensor, classes: torch.Tensor,
            aux_weight: float) -> torch.Tensor:
    loss = torch.zeros((), device=target.device)
    if variant.pair_loss:
        loss = loss + F.cross_entropy(out.pair_logits, target)
    if variant.digit_loss:
        # For simple_cnn the digit loss is the whole objective, so it gets weight 1.
        weight = aux_weight if variant.pair_loss else 1.0
        digit_ce = F.cross_entropy(out.digit_logits.flatten(0, 1), classes.flatten(), reduction="sum")
        loss = loss + weight * digit_ce / len(target)   # = CE(digit a) + CE(digit b), batch means
    return loss


def train_one_epoch(model: PairNet, cfg: RunConfig, data: PairSet, opt: torch.optim.Optimizer,
                    g: torch.Generator) -> dict:
    model.train()
    # Summed on the device and read once per epoch: a per-step .item() would make a GPU wait
    # for every step instead of queueing them.
    total_loss = torch.zeros((), device=data.input.device)
    correct = torch.zeros((), dtype=torch.long, device=data.input.device)
    order = torch.randperm(len(data), generator=g).to(data.input.device)
    for start in range(0, len(data), cfg.batch_size):
        batch = data[order[start: start + cfg.batch_size]]
        x, target, classes = augment(cfg.augmentation, batch.input, batch.target, batch.classes,
                                     g, swap=cfg.uses_swap)
        with autocast(cfg.precision, x.device):
            out = model(x)
        loss = loss_fn(VARIANTS[cfg.variant], out, target, classes, cfg.aux_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total_loss += loss.detach() * len(target)
        correct += (out.pair_logits.argmax(1) == target).sum()
    return {"train_loss": total_loss.item() / len(data), "train_acc": 100.0 * correct.item() / len(data)}


@torch.inference_mode()
def evaluate(model: PairNet, data: PairSet, precision: str = "fp32", batch_size: int = 1000) -> dict:
    """Pair accuracy (%), and digit accuracy (%) for variants with digit outputs."""
    model.eval()
    pair_correct, digit_correct, has_digits = 0, 0, False
    for start in range(0, len(data), batch_size):
        batch = data[start: start + batch_size]
        with autocast(precision, batch.input.device):
            out = model(batch.input)
        pair_correct += (out.pair_logits.argmax(1) == batch.target).sum().item()
        if out.digit_logits is not None:
            has_digits = True
            digit_correct += (out.digit_logits.argmax(-1) == batch.classes).sum().item()
    return {"pair_acc": 100.0 * pair_correct / len(data),
            "digit_acc": 100.0 * digit_correct / (2 * len(data)) if has_digits else None}


@dataclass
class RunResult:
    config: RunConfig
    model: PairNet
    history: list[dict]   # one record per epoch
    final: dict           # selected epoch, val and test metrics, parameters, wall time


def train_run(cfg: RunConfig, mnist: MNIST, device: torch.device | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> RunResult:
    """Train one variant on one round's data; select on validation; test once."""
    t0 = time.perf_counter()
    device = device or pick_device()
    rnd = mnist.round(cfg.data_seed, cfg.n_pairs, cfg.val_pairs)
    train, val, test = rnd.train.to(device), rnd.val.to(device), rnd.test.to(device)

    torch.manual_seed(cfg.init_seed)            # init and dropout
    g = torch.Generator().manual_seed(cfg.init_seed)  # batch order and augmentation
    model = build_model(cfg.variant, cfg.encoder)
    model.set_normalization(rnd.train.input)
    # channels_last: oneDNN's convolutions and max-pooling run ~25 % faster on CPU in NHWC
    # (benchmarks/README.md); the values are the same up to float rounding.
    model.to(device, memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs) if cfg.schedule == "cosine"
             else None)

    history, best, best_state = [], None, None
    for epoch in range(1, cfg.epochs + 1):
        record = {"epoch": epoch, **train_one_epoch(model, cfg, train, opt, g),
                  "lr": opt.param_groups[0]["lr"]}
        if sched is not None:
            sched.step()
        if cfg.selection == "best_val":
            v = evaluate(model, val, cfg.precision)
            record.update(val_acc=v["pair_acc"], val_digit_acc=v["digit_acc"])
            # Ties go to the later epoch: with 200 validation pairs, one pair is 0.5 %.
            if best is None or v["pair_acc"] >= best["val_acc"]:
                best = {"epoch": epoch, "val_acc": v["pair_acc"], "val_digit_acc": v["digit_acc"]}
                best_state = copy.deepcopy(model.state_dict())
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)

    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best = {"epoch": cfg.epochs, "val_acc": None, "val_digit_acc": None}
    # The one look at the test pairs (none at all while tuning).
    test_metrics = evaluate(model, test, cfg.precision) if cfg.test else {"pair_acc": None, "digit_acc": None}
    model.cpu().eval()
    final = {
        "selected_epoch": best["epoch"], "val_acc": best["val_acc"], "val_digit_acc": best["val_digit_acc"],
        "test_acc": test_metrics["pair_acc"], "test_digit_acc": test_metrics["digit_acc"],
        "parameters": count_parameters(model), "train_pairs": len(train), "test_pairs": len(test),
        "wall_seconds": time.perf_counter() - t0, "device": str(device),
    }
    return RunResult(cfg, model, history, final)
