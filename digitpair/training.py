"""One run: a frozen config in, per-epoch records and its typed `Metrics` out. A flat loop, no framework.

Protocol (one round of the study): draw fresh pairs with `data_seed`, initialise with
`init_seed`, train, pick the epoch with the best validation accuracy (validation pairs are
carved from the training pairs), then evaluate that checkpoint on the test pairs once.
`selection="last"` reproduces the 2020 report, which trained on all 1000 pairs and reported
the last epoch.

Levers beyond the report's recipe, each off by default, so a config that names none trains the
plain recipe (and the records of the runs without a lever read the same): label smoothing of the cross-entropies, an exponential moving average of
the weights (evaluated, selected and kept instead of the raw weights), a validation fold (which
slice of the training pairs is held out, for k-fold selection), and ensembles of `members`
networks trained on the same pairs.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import typing
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .augment import AUGMENTATIONS, PER_DIGIT, augment, random_affine
from .data import MNIST, PairSet, fold_count
from .models import (DEFAULT_ENCODER, DEFAULT_HEAD, VARIANTS, Ensemble, PairNet, PairOutput, Variant, average_outputs,
                     build_model, check_build, count_parameters)

OPTIMIZERS = ("adam", "sgd", "rmsprop")
# MNIST-test's 10000 images make at most 5000 pairs of distinct images (data.mnist_to_pairs).
MAX_PAIRS = 5000
SEEDS = 2**63   # torch.manual_seed takes any 64-bit seed; non-negative ones print and sort plainly


@dataclass(frozen=True)
class Range:
    """The values a numeric field takes: low .. high, each end included unless marked open."""
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def __contains__(self, value) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open or self.high == math.inf else value <= self.high
        return (not isinstance(value, float) or math.isfinite(value)) and above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            text = f"{'>' if self.low_open else '>='} {self.low}"
        else:
            text = f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
        return f"{text} ({self.why})" if self.why else text


# The range of every numeric RunConfig field but the two that depend on others (val_pairs < n_pairs,
# val_fold < data.fold_count: RunConfig.ranges). Floats must also be finite: no NaN, no inf.
RANGES = {
    "lr": Range(0, low_open=True),
    "momentum": Range(0, 1, high_open=True),
    "batch_size": Range(1),
    "epochs": Range(1),
    "weight_decay": Range(0),
    "aux_weight": Range(0),
    "label_smoothing": Range(0, 1, high_open=True),
    "ema": Range(0, 1, high_open=True),
    "n_pairs": Range(1, MAX_PAIRS, why=f"MNIST-test's 10000 images make {MAX_PAIRS} pairs"),
    "tta": Range(0),
    "data_seed": Range(0, SEEDS, high_open=True),
    "init_seed": Range(0, SEEDS, high_open=True),
    "members": Range(1),
}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class RunConfig:
    variant: str = "shared_aux"
    encoder: str = DEFAULT_ENCODER  # the conv trunk, see ENCODERS in digitpair/models.py
    head: str = DEFAULT_HEAD        # the comparison head: "order" (ours) or "fc" (the 2020 report's), see HEADS
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0        # sgd / rmsprop only; the report used the torch defaults (0)
    batch_size: int = 100
    epochs: int = 120
    schedule: str = "cosine"     # "constant" | "cosine" (cosine annealing to 0 over the epochs)
    weight_decay: float = 0.0
    aux_weight: float = 1.0      # loss = pair CE + aux_weight * (CE digit a + CE digit b)
    label_smoothing: float = 0.0 # of the pair and digit cross-entropies (F.cross_entropy's)
    ema: float = 0.0             # > 0: decay per step of an EMA of weights and buffers, used instead of them
    precision: str = "fp32"      # "fp32" | "bf16": autocast convolutions and matmuls to bfloat16
    augmentation: str = "safe"   # "none" | "seed" | "safe" | "elastic" | "style" ..., see digitpair/augment.py
    swap: bool = True            # with a per-digit augmentation: swap the digits; only where digit labels are trained
    n_pairs: int = 1000          # pairs per split, as generate_pair_sets(1000)
    val_pairs: int = 200         # carved from the training pairs for selection
    val_fold: int = 0            # which val_pairs-sized slice is held out, counted from the end (data.py)
    tta: int = 0                 # evaluation only: average over the pair and this many affine copies of it
    selection: str = "best_val"  # "best_val" | "last"
    test: bool = False           # score the test pairs once, after selection: final studies only
    data_seed: int = 0
    init_seed: int = 1
    members: int = 1             # > 1: an ensemble; member i is initialised with init_seed + i

    def __post_init__(self):
        for field, kind in FIELD_TYPES.items():   # bool is an int to Python, not to a config
            value = getattr(self, field)
            fits = (isinstance(value, bool) if kind is bool else
                    isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool))
            if not fits:
                raise ValueError(f"{field}={value!r}: {field} takes {TYPE_NAMES[kind]}")
        for field, allowed in self.ranges().items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field}={getattr(self, field)!r} is out of range: {field} takes "
                                 f"{'an integer' if FIELD_TYPES[field] is int else 'a finite number'} {allowed}")
        check_build(self.variant, self.encoder, self.head, self.members)
        checks = {
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
        if self.init_seed <= self.data_seed < self.init_seed + max(self.members, 1):
            raise ValueError("data_seed and init_seed must differ (they seed different things); "
                             "an ensemble's members take init_seed .. init_seed + members - 1")

    def ranges(self) -> dict[str, Range]:
        """Every numeric field's range, those that depend on other fields included."""
        folds = fold_count(self.n_pairs, self.val_pairs)
        return {**RANGES, "val_pairs": Range(0, self.n_pairs, high_open=True, why="fewer than n_pairs"),
                "val_fold": Range(0, folds, high_open=True, why=f"{self.n_pairs} pairs make {folds} fold(s) of "
                                  f"{self.val_pairs} validation pairs" if self.val_pairs else "no validation pairs")}

    @property
    def uses_swap(self) -> bool:
        # Swapping recomputes the target from the classes: only for variants that see classes.
        return self.swap and self.augmentation in PER_DIGIT and VARIANTS[self.variant].digit_loss

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)


FIELD_TYPES = typing.get_type_hints(RunConfig)   # field -> bool, int, float or str


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
            aux_weight: float, label_smoothing: float = 0.0) -> torch.Tensor:
    loss = torch.zeros((), device=target.device)
    if variant.pair_loss:
        loss = loss + F.cross_entropy(out.pair_logits, target, label_smoothing=label_smoothing)
    if variant.digit_loss:
        # For simple_cnn the digit loss is the whole objective, so it gets weight 1.
        weight = aux_weight if variant.pair_loss else 1.0
        digit_ce = F.cross_entropy(out.digit_logits.flatten(0, 1), classes.flatten(), reduction="sum",
                                   label_smoothing=label_smoothing)
        loss = loss + weight * digit_ce / len(target)   # = CE(digit a) + CE(digit b), batch means
    return loss


def train_one_epoch(model: PairNet, cfg: RunConfig, data: PairSet, opt: torch.optim.Optimizer,
                    g: torch.Generator, averaged: AveragedModel | None = None) -> dict:
    model.train()
    # Summed on the device and read once per epoch: a per-step .item() would make a GPU wait
    # for every step instead of queueing them.
    total_loss = torch.zeros((), device=data.input.device)
    correct = torch.zeros((), dtype=torch.long, device=data.input.device)
    order = torch.randperm(len(data), generator=g).to(data.input.device)
    for start in range(0, len(data), cfg.batch_size):
        batch = data[order[start: start + cfg.batch_size]]
        x, target, classes = augment(cfg.augmentation, batch.input, batch.target, batch.classes,
                                     g, swap=cfg.uses_swap, labelled=VARIANTS[cfg.variant].digit_loss)
        with autocast(cfg.precision, x.device):
            out = model(x)
        loss = loss_fn(VARIANTS[cfg.variant], out, target, classes, cfg.aux_weight, cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if averaged is not None:
            averaged.update_parameters(model)
        total_loss += loss.detach() * len(target)
        correct += (out.pair_logits.argmax(1) == target).sum()
    return {"train_loss": total_loss.item() / len(data), "train_acc": 100.0 * correct.item() / len(data)}


def tta_output(model: PairNet, x: torch.Tensor, copies: int, g: torch.Generator) -> PairOutput:
    """Test-time augmentation: the outputs for x and `copies` views of it, each digit under its own
    `safe` affine (the distortions the networks were trained on), averaged as an ensemble's."""
    views = [x] + [random_affine(x.reshape(-1, 1, *x.shape[2:]), g).reshape(x.shape) for _ in range(copies)]
    return average_outputs([model(v) for v in views])


@torch.inference_mode()
def evaluate(model: PairNet, data: PairSet, precision: str = "fp32", batch_size: int = 1000, tta: int = 0) -> dict:
    """Pair accuracy (%), and digit accuracy (%) for variants with digit outputs; with `tta` copies,
    of the averaged outputs (the same views at every call: a fixed generator)."""
    model.eval()
    pair_correct, digit_correct, has_digits = 0, 0, False
    g = torch.Generator().manual_seed(0)
    for start in range(0, len(data), batch_size):
        batch = data[start: start + batch_size]
        with autocast(precision, batch.input.device):
            out = model(batch.input) if tta == 0 else tta_output(model, batch.input, tta, g)
        pair_correct += (out.pair_logits.argmax(1) == batch.target).sum().item()
        if out.digit_logits is not None:
            has_digits = True
            digit_correct += (out.digit_logits.argmax(-1) == batch.classes).sum().item()
    return {"pair_acc": 100.0 * pair_correct / len(data),
            "digit_acc": 100.0 * digit_correct / (2 * len(data)) if has_digits else None}


@dataclass(frozen=True)
class Metrics:
    """What a run scored, at the epoch it kept: what its record holds (records.RunRecord), its
    model card quotes and its study's summary averages."""
    selected_epoch: int
    val_acc: float | None            # None: no validation pairs (selection = "last")
    val_digit_acc: float | None
    test_acc: float | None           # None: the test pairs were not evaluated (config.test = False)
    test_digit_acc: float | None     # None also for variants without digit outputs
    parameters: int
    train_pairs: int
    test_pairs: int
    wall_seconds: float
    # Other writers' digits (digitpair/writers.py), validation data read by non-final runs; None:
    # not read (final runs, synthetic data, runs recorded before they were read).
    usps_digit_acc: float | None = None
    usps_pair_acc: float | None = None
    uci_digit_acc: float | None = None
    uci_pair_acc: float | None = None
    pen_digit_acc: float | None = None
    pen_pair_acc: float | None = None
    pen_per_digit: list[float] | None = None   # pen digits read right, % of each class 0-9
    # An ensemble's members (train_ensemble), each trained and selected as a single run would be;
    # None for single networks and for ensembles recorded before these were kept.
    member_selected_epochs: list[int] | None = None
    member_val_acc: list[float | None] | None = None

    def to_dict(self) -> dict:
        """As recorded: an optional metric that was not read is left out, not written as null, so the
        records of runs that never read it stay as they were written."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.default is dataclasses.MISSING or getattr(self, f.name) is not None}


@dataclass(frozen=True)
class RunResult:
    config: RunConfig
    model: PairNet        # or an Ensemble, with members > 1
    history: list[dict]   # one record per epoch (per member and epoch, with "member", for ensembles)
    metrics: Metrics
    device: str           # where it trained: "cpu", "cuda", ...


def train_run(cfg: RunConfig, mnist: MNIST, device: torch.device | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> RunResult:
    """Train one variant on one round's data; select on validation; test once."""
    if cfg.members > 1:
        return train_ensemble(cfg, mnist, device, on_epoch)
    t0 = time.perf_counter()
    device = device or pick_device()
    rnd = mnist.round(cfg.data_seed, cfg.n_pairs, cfg.val_pairs, cfg.val_fold)
    train, val, test = rnd.train.to(device), rnd.val.to(device), rnd.test.to(device)

    torch.manual_seed(cfg.init_seed)            # init and dropout
    g = torch.Generator().manual_seed(cfg.init_seed)  # batch order and augmentation
    model = build_model(cfg.variant, cfg.encoder, cfg.head)
    model.set_normalization(rnd.train.input)
    # channels_last: oneDNN's convolutions and max-pooling run ~25 % faster on CPU in NHWC
    # (benchmarks/README.md); the values are the same up to float rounding.
    model.to(device, memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs) if cfg.schedule == "cosine"
             else None)
    # With `ema`, the average is what is evaluated, selected and returned; the raw weights only train.
    averaged = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
                if cfg.ema > 0 else None)
    kept = model if averaged is None else averaged.module

    history, best, best_state = [], None, None
    for epoch in range(1, cfg.epochs + 1):
        record = {"epoch": epoch, **train_one_epoch(model, cfg, train, opt, g, averaged),
                  "lr": opt.param_groups[0]["lr"]}
        if sched is not None:
            sched.step()
        # "last" with validation pairs looks at them once, at the epoch it keeps.
        if cfg.selection == "best_val" or (cfg.val_pairs and epoch == cfg.epochs):
            v = evaluate(kept, val, cfg.precision, tta=cfg.tta)
            record.update(val_acc=v["pair_acc"], val_digit_acc=v["digit_acc"])
            # Ties go to the later epoch: with 200 validation pairs, one pair is 0.5 %.
            if cfg.selection == "best_val" and (best is None or v["pair_acc"] >= best["val_acc"]):
                best = {"epoch": epoch, "val_acc": v["pair_acc"], "val_digit_acc": v["digit_acc"]}
                best_state = copy.deepcopy(kept.state_dict())
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)

    model = kept
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best = {"epoch": cfg.epochs, "val_acc": record.get("val_acc"), "val_digit_acc": record.get("val_digit_acc")}
    # The one look at the test pairs (none at all while tuning).
    test_metrics = evaluate(model, test, cfg.precision, tta=cfg.tta) if cfg.test else {"pair_acc": None, "digit_acc": None}
    model.cpu().eval()
    metrics = Metrics(selected_epoch=best["epoch"], val_acc=best["val_acc"], val_digit_acc=best["val_digit_acc"],
                      test_acc=test_metrics["pair_acc"], test_digit_acc=test_metrics["digit_acc"],
                      parameters=count_parameters(model), train_pairs=len(train), test_pairs=len(test),
                      wall_seconds=time.perf_counter() - t0)
    return RunResult(cfg, model, history, metrics, str(device))


def train_ensemble(cfg: RunConfig, mnist: MNIST, device: torch.device | None = None,
                   on_epoch: Callable[[dict], None] | None = None) -> RunResult:
    """`cfg.members` networks on the same round's pairs, member i initialised (and its batches
    drawn) with init_seed + i, so member 0 is the single model of this config; each member selects
    its epoch on validation as a single run would. The ensemble averages their digit
    distributions (models.Ensemble) and is evaluated as one model: the test pairs once, by it."""
    t0 = time.perf_counter()
    device = device or pick_device()
    members = []
    for i in range(cfg.members):
        tag = None if on_epoch is None else (lambda r, i=i: on_epoch({**r, "member": i}))
        member_cfg = replace(cfg, members=1, init_seed=cfg.init_seed + i, test=False)
        members.append(train_run(member_cfg, mnist, device, tag))
    model = Ensemble([m.model for m in members]).to(device)
    rnd = mnist.round(cfg.data_seed, cfg.n_pairs, cfg.val_pairs, cfg.val_fold)
    none = {"pair_acc": None, "digit_acc": None}
    val = evaluate(model, rnd.val.to(device), cfg.precision, tta=cfg.tta) if cfg.val_pairs else none
    test = evaluate(model, rnd.test.to(device), cfg.precision, tta=cfg.tta) if cfg.test else none
    model.cpu().eval()
    epochs = [m.metrics.selected_epoch for m in members]
    metrics = Metrics(
        # The longest any member trained; each member's is in member_selected_epochs.
        selected_epoch=max(epochs), val_acc=val["pair_acc"], val_digit_acc=val["digit_acc"],
        test_acc=test["pair_acc"], test_digit_acc=test["digit_acc"],
        parameters=count_parameters(model), train_pairs=members[0].metrics.train_pairs,
        test_pairs=len(rnd.test), wall_seconds=time.perf_counter() - t0,
        member_selected_epochs=epochs, member_val_acc=[m.metrics.val_acc for m in members])
    history = [{**r, "member": i} for i, m in enumerate(members) for r in m.history]
    return RunResult(cfg, model, history, metrics, str(device))
