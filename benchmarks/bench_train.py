"""Training throughput: digitpair's loop vs a conventional loop, side by side in one process.

The conventional loop is what public implementations of this study do: DataLoader over a
TensorDataset, a `.to(device)` per batch, and a full evaluation of train and test accuracy
after every epoch. Both train the same architecture with the same config and loss; the script
prints pairs/s (training pairs per second of wall time, evaluation included), the ratio, and
the test accuracy of both (parity check: differences should be seed noise).

    python benchmarks/bench_train.py --model shared_aux --epochs 20 --seeds 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from torch.utils.data import DataLoader, TensorDataset

from digitpair.core.augment import augment
from digitpair.core.config import RunConfig
from digitpair.core.data import MNIST
from digitpair.core.models import ENCODERS, VARIANTS, build_model
from digitpair.lab.provenance import git_commit, machine
from digitpair.lab.training import evaluate, loss_fn, make_optimizer, train_run


def conventional_run(cfg: RunConfig, mnist: MNIST, device: torch.device) -> tuple[float, float]:
    """(pairs/s, test accuracy %) of the conventional loop; last epoch, as such code reports."""
    rnd = mnist.round(cfg.data_seed, cfg.n_pairs, cfg.val_pairs)
    torch.manual_seed(cfg.init_seed)
    g = torch.Generator().manual_seed(cfg.init_seed)
    model = build_model(cfg.variant, cfg.encoder)
    model.set_normalization(rnd.train.input)
    model.to(device)
    opt = make_optimizer(cfg, model)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
        if cfg.schedule == "cosine"
        else None
    )
    loader = DataLoader(
        TensorDataset(rnd.train.input, rnd.train.target, rnd.train.classes),
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=g,
    )
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for x, target, classes in loader:
            x, target, classes = x.to(device), target.to(device), classes.to(device)
            x, target, classes = augment(
                cfg.augmentation, x, target, classes, g, swap=cfg.uses_swap
            )
            loss = loss_fn(VARIANTS[cfg.variant], model(x), target, classes, cfg.aux_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        model.eval()
        with torch.no_grad():  # per-epoch train and test accuracy, as public implementations print
            for split in (rnd.train, rnd.test):
                (
                    model(split.input.to(device)).pair_logits.argmax(1).cpu() == split.target
                ).float().mean()
    wall = time.perf_counter() - t0
    return cfg.epochs * len(rnd.train) / wall, evaluate(model, rnd.test.to(device))["pair_acc"]


def forward_macs(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the convolutions and linear layers in one forward pass of `x` (eval
    mode)."""
    macs = 0

    def count(m, _, out):
        nonlocal macs
        if isinstance(m, torch.nn.Conv2d):
            macs += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, torch.nn.Linear):
            macs += out.numel() * m.in_features

    hooks = [m.register_forward_hook(count) for m in module.modules()]
    with torch.no_grad():
        module.eval()(x)
    for h in hooks:
        h.remove()
    return macs


def training_flop_per_pair(model_name: str, encoder: str) -> float:
    """Multiply-adds of one forward pass over a pair, counted on the module shapes; x2 FLOP per
    MAC, x3 for forward + backward (the usual estimate, Kaplan et al., 2020)."""
    return 2 * forward_macs(build_model(model_name, encoder), torch.zeros(1, 2, 14, 14)) * 3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="shared_aux")
    p.add_argument(
        "--encoder",
        default=RunConfig.encoder,
        help=f"conv trunk of both loops: {', '.join(ENCODERS)}",
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument(
        "--precision",
        default="fp32",
        help="digitpair loop only: fp32 or bf16 (the reference is fp32)",
    )
    p.add_argument("--data-dir", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mnist = MNIST(args.data_dir)
    ours, ref = [], []
    # Untimed warm-up of both loops: one-off costs (CUDA context, cuDNN/oneDNN kernel selection)
    # would otherwise land on whichever loop runs first.
    warm = RunConfig(
        variant=args.model,
        encoder=args.encoder,
        epochs=1,
        batch_size=args.batch_size,
        precision=args.precision,
    )
    train_run(warm, mnist, device=device)
    conventional_run(replace(warm, precision="fp32"), mnist, device)
    for seed in range(args.seeds):
        cfg = RunConfig(
            variant=args.model,
            encoder=args.encoder,
            epochs=args.epochs,
            batch_size=args.batch_size,
            data_seed=seed,
            init_seed=100 + seed,
        )
        # Alternate the order so drift in machine load hits both loops alike.
        for which in (0, 1) if seed % 2 == 0 else (1, 0):
            if which == 0:
                r = train_run(replace(cfg, precision=args.precision), mnist, device=device)
                ours.append(
                    (
                        cfg.epochs * r.metrics.train_pairs / r.metrics.wall_seconds,
                        r.metrics.test_acc,
                    )
                )
            else:
                ref.append(conventional_run(cfg, mnist, device))
    m = machine()
    print(
        f"machine: {m['cpu']} x{m['cpu_count']}, {m['gpu'] or 'no GPU'}, torch {m['torch']}, "
        f"threads {args.threads}, commit {git_commit()}"
    )
    print(
        f"config: {args.model} ({args.encoder} encoder), {args.epochs} epochs, batch "
        f"{args.batch_size}, {args.seeds} seeds, {device}, "
        f"digitpair loop in {args.precision}"
    )
    ours_pps, ref_pps = statistics.median(p for p, _ in ours), statistics.median(p for p, _ in ref)
    print(
        f"conventional loop: {ref_pps:8.0f} pairs/s  test acc "
        f"{statistics.fmean(a for _, a in ref):.2f} %"
    )
    print(
        f"digitpair loop:    {ours_pps:8.0f} pairs/s  test acc "
        f"{statistics.fmean(a for _, a in ours):.2f} %"
    )
    flop = training_flop_per_pair(args.model, args.encoder)
    print(
        f"digitpair loop sustains {ours_pps * flop / 1e9:.1f} GFLOP/s of training arithmetic "
        f"({flop / 1e6:.1f} MFLOP per pair, {args.threads} thread(s))"
    )
    print(f"ratio: {ours_pps / ref_pps:.2f}x")


if __name__ == "__main__":
    main()
