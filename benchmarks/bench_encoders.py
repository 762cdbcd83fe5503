"""Where an encoder's training step goes on a CPU: every `ENCODERS` trunk, fp32 and bf16.

One training step (forward, backward, Adam) of one encoder on a batch of digits, channels_last,
as `digitpair.lab.training` runs it, timed for each trunk and precision in the same process, with
its arithmetic counted from the module shapes. The ratio is against `padded` in fp32, the trunk
and precision the first studies used.

    python benchmarks/bench_encoders.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from bench_train import forward_macs  # this folder: the script's own, first on sys.path

from digitpair.core.models import ENCODERS, Encoder
from digitpair.lab.provenance import git_commit, machine
from digitpair.lab.training import autocast


def make_step(encoder: nn.Module, precision: str, digits: int):
    """One training step of `encoder` on a fixed batch, as `digitpair.lab.training` runs it."""
    encoder.train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(encoder.parameters())
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(digits, 1, 14, 14, generator=g), torch.randint(0, 10, (digits,), generator=g)

    def step():
        with autocast(precision, x.device):
            logits = encoder(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # oneDNN creates its kernels on the first calls
        step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = machine()
    print(
        f"machine: {m['cpu']} x{m['cpu_count']}, torch {m['torch']}, threads {args.threads}, "
        f"commit {git_commit()}"
    )
    # 200 digits = a batch of 100 pairs (`best`); 2000 = a batch of 1000 pairs (`seed2020`).
    for digits in (200, 2000):
        steps = max(2, 4000 // digits)
        configs = [(name, precision) for name in ENCODERS for precision in ("fp32", "bf16")]
        encoders = {c: Encoder(c[0]) for c in configs}
        step = {c: make_step(encoders[c], c[1], digits) for c in configs}
        times = {c: [] for c in configs}
        # Round-robin over the configurations, so drift in machine load hits them all alike.
        for _ in range(args.repeats):
            for c in configs:
                t = time.perf_counter()
                for _ in range(steps):
                    step[c]()
                times[c].append((time.perf_counter() - t) / steps)
        sec = {c: statistics.median(ts) for c, ts in times.items()}
        for (name, precision), s in sec.items():
            encoder = encoders[(name, precision)]
            params = sum(p.numel() for p in encoder.parameters())
            print(
                f"{digits:5d} digits  {name:<8} {precision}  {params:6,d} params  "
                f"{forward_macs(encoder, torch.zeros(1, 1, 14, 14)) / 1e6:4.2f} M MAC/digit  "
                f"{s * 1e3:7.2f} ms/step  "
                f"{digits / 2 / s:6.0f} pairs/s  {sec[('padded', 'fp32')] / s:4.2f}x padded fp32"
            )


if __name__ == "__main__":
    main()
