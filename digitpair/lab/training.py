"""One run: a frozen config in, per-epoch records and its typed `Metrics` out. A flat loop, no
framework.

Protocol (one round of the study): draw fresh pairs with `data_seed`, initialise with
`init_seed`, train, pick the epoch with the best validation accuracy (validation pairs are
carved from the training pairs), then evaluate that checkpoint on the test pairs once.
`selection="last"` reproduces the 2020 report, which trained on all 1000 pairs and reported
the last epoch.

Levers beyond the report's recipe, each off by default, so a config that names none trains the plain
recipe (and the records of the runs without a lever read the same): label smoothing of the
cross-entropies, an exponential moving average of the weights (evaluated, selected and kept instead
of the raw weights), a validation fold (which slice of the training pairs is held out, for k-fold
selection), and ensembles of `members` networks trained on the same pairs."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core.augment import augment, random_affine
from ..core.config import Metrics, RunConfig
from ..core.data import MNIST, PairSet
from ..core.models import (
    VARIANTS,
    Ensemble,
    PairNet,
    PairOutput,
    Variant,
    average_outputs,
    build_model,
    count_parameters,
)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(precision: str, device: torch.device):
    """bf16: convolutions and matmuls in bfloat16 (CPUs with AVX512-BF16/AMX, GPU tensor cores);
    parameters, optimizer state and losses stay fp32 (mixed precision, Micikevicius et al., 2018).
    On this project's CPU a training run is ~1.3x faster, at accuracy parity
    (benchmarks/README.md)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_optimizer(cfg: RunConfig, model: PairNet) -> torch.optim.Optimizer:
    params, kw = model.parameters(), dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=cfg.momentum, **kw)
    return torch.optim.RMSprop(params, momentum=cfg.momentum, **kw)


def loss_fn(
    variant: Variant,
    out,
    target: torch.Tensor,
    classes: torch.Tensor,
    aux_weight: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    loss = torch.zeros((), device=target.device)
    if variant.pair_loss:
        loss = loss + F.cross_entropy(out.pair_logits, target, label_smoothing=label_smoothing)
    if variant.digit_loss:
        # For simple_cnn the digit loss is the whole objective, so it gets weight 1.
        weight = aux_weight if variant.pair_loss else 1.0
        digit_ce = F.cross_entropy(
            out.digit_logits.flatten(0, 1),
            classes.flatten(),
            reduction="sum",
            label_smoothing=label_smoothing,
        )
        loss = loss + weight * digit_ce / len(target)  # = CE(digit a) + CE(digit b), batch means
    return loss


def train_one_epoch(
    model: PairNet,
    cfg: RunConfig,
    data: PairSet,
    opt: torch.optim.Optimizer,
    g: torch.Generator,
    averaged: AveragedModel | None = None,
) -> dict:
    model.train()
    # Summed on the device and read once per epoch: a per-step .item() would make a GPU wait
    # for every step instead of queueing them.
    total_loss = torch.zeros((), device=data.input.device)
    correct = torch.zeros((), dtype=torch.long, device=data.input.device)
    order = torch.randperm(len(data), generator=g).to(data.input.device)
    for start in range(0, len(data), cfg.batch_size):
        batch = data[order[start : start + cfg.batch_size]]
        x, target, classes = augment(
            cfg.augmentation,
            batch.input,
            batch.target,
            batch.classes,
            g,
            swap=cfg.uses_swap,
            labelled=VARIANTS[cfg.variant].digit_loss,
        )
        with autocast(cfg.precision, x.device):
            out = model(x)
        loss = loss_fn(
            VARIANTS[cfg.variant], out, target, classes, cfg.aux_weight, cfg.label_smoothing
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if averaged is not None:
            averaged.update_parameters(model)
        total_loss += loss.detach() * len(target)
        correct += (out.pair_logits.argmax(1) == target).sum()
    return {
        "train_loss": total_loss.item() / len(data),
        "train_acc": 100.0 * correct.item() / len(data),
    }


def tta_output(model: PairNet, x: torch.Tensor, copies: int, g: torch.Generator) -> PairOutput:
    """Test-time augmentation: the outputs for x and `copies` views of it, each digit under its own
    `safe` affine (the distortions the networks were trained on), averaged as an ensemble's."""
    views = [x] + [
        random_affine(x.reshape(-1, 1, *x.shape[2:]), g).reshape(x.shape) for _ in range(copies)
    ]
    return average_outputs([model(v) for v in views])


@torch.inference_mode()
def evaluate(
    model: PairNet, data: PairSet, precision: str = "fp32", batch_size: int = 1000, tta: int = 0
) -> dict:
    """Pair accuracy (%), and digit accuracy (%) for variants with digit outputs; with `tta` copies,
    of the averaged outputs (the same views at every call: a fixed generator)."""
    model.eval()
    pair_correct, digit_correct, has_digits = 0, 0, False
    g = torch.Generator().manual_seed(0)
    for start in range(0, len(data), batch_size):
        batch = data[start : start + batch_size]
        with autocast(precision, batch.input.device):
            out = model(batch.input) if tta == 0 else tta_output(model, batch.input, tta, g)
        pair_correct += (out.pair_logits.argmax(1) == batch.target).sum().item()
        if out.digit_logits is not None:
            has_digits = True
            digit_correct += (out.digit_logits.argmax(-1) == batch.classes).sum().item()
    return {
        "pair_acc": 100.0 * pair_correct / len(data),
        "digit_acc": 100.0 * digit_correct / (2 * len(data)) if has_digits else None,
    }


@dataclass(frozen=True)
class RunResult:
    config: RunConfig
    model: PairNet  # or an Ensemble, with members > 1
    history: list[dict]  # one record per epoch (per member and epoch, with "member", for ensembles)
    metrics: Metrics
    device: str  # where it trained: "cpu", "cuda", ...


def train_run(
    cfg: RunConfig,
    mnist: MNIST,
    device: torch.device | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunResult:
    """Train one variant on one round's data; select on validation; test once."""
    if cfg.members > 1:
        return train_ensemble(cfg, mnist, device, on_epoch)
    t0 = time.perf_counter()
    device = device or pick_device()
    rnd = mnist.round(cfg.data_seed, cfg.n_pairs, cfg.val_pairs, cfg.val_fold)
    train, val, test = rnd.train.to(device), rnd.val.to(device), rnd.test.to(device)

    torch.manual_seed(cfg.init_seed)  # init and dropout
    g = torch.Generator().manual_seed(cfg.init_seed)  # batch order and augmentation
    model = build_model(cfg.variant, cfg.encoder, cfg.head)
    model.set_normalization(rnd.train.input)
    # channels_last: oneDNN's convolutions and max-pooling run ~25 % faster on CPU in NHWC
    # (benchmarks/README.md); the values are the same up to float rounding.
    model.to(device, memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
        if cfg.schedule == "cosine"
        else None
    )
    # With `ema`, the average is what is evaluated, selected and returned; the raw weights only
    # train.
    averaged = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        if cfg.ema > 0
        else None
    )
    kept = model if averaged is None else averaged.module

    history, best, best_state = [], None, None
    for epoch in range(1, cfg.epochs + 1):
        record = {
            "epoch": epoch,
            **train_one_epoch(model, cfg, train, opt, g, averaged),
            "lr": opt.param_groups[0]["lr"],
        }
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
        best = {
            "epoch": cfg.epochs,
            "val_acc": record.get("val_acc"),
            "val_digit_acc": record.get("val_digit_acc"),
        }
    # The one look at the test pairs (none at all while tuning).
    test_metrics = (
        evaluate(model, test, cfg.precision, tta=cfg.tta)
        if cfg.test
        else {"pair_acc": None, "digit_acc": None}
    )
    model.cpu().eval()
    metrics = Metrics(
        selected_epoch=best["epoch"],
        val_acc=best["val_acc"],
        val_digit_acc=best["val_digit_acc"],
        test_acc=test_metrics["pair_acc"],
        test_digit_acc=test_metrics["digit_acc"],
        parameters=count_parameters(model),
        train_pairs=len(train),
        test_pairs=len(test),
        wall_seconds=time.perf_counter() - t0,
    )
    return RunResult(cfg, model, history, metrics, str(device))


def train_ensemble(
    cfg: RunConfig,
    mnist: MNIST,
    device: torch.device | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunResult:
    """`cfg.members` networks on the same round's pairs, member i initialised (and its batches
    drawn) with init_seed + i, so member 0 is the single model of this config; each member selects
    its epoch on validation as a single run would. The ensemble averages their digit distributions
    (models.Ensemble) and is evaluated as one model: the test pairs once, by it."""
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
        selected_epoch=max(epochs),
        val_acc=val["pair_acc"],
        val_digit_acc=val["digit_acc"],
        test_acc=test["pair_acc"],
        test_digit_acc=test["digit_acc"],
        parameters=count_parameters(model),
        train_pairs=members[0].metrics.train_pairs,
        test_pairs=len(rnd.test),
        wall_seconds=time.perf_counter() - t0,
        member_selected_epochs=epochs,
        member_val_acc=[m.metrics.val_acc for m in members],
    )
    history = [{**r, "member": i} for i, m in enumerate(members) for r in m.history]
    return RunResult(cfg, model, history, metrics, str(device))
