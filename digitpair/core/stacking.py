"""k networks of one shape as one, to answer with: each layer's k copies become one layer k times
as wide, a convolution of k groups or a batched matrix product. The page runs five ensembles of
five small networks and a guard of three readers for every request; one at a time, each network's
layers are a few kernel calls on a few hundred values, and the calls' overhead, not their
arithmetic, takes most of the time (`python benchmarks/serving.py`). Stacked, one call
does the work of k. For answering only: the layers are evaluated as in eval mode (batch norm
with its running statistics, dropout off), and the stacked copy is not trained.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Unstack(nn.Module):
    """(N, k * C, H, W) -> (k, N, C * H * W): each network's feature maps, flattened as
    nn.Flatten flattens them (channel, row, column), one batch per network."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.k, -1).transpose(0, 1)


class StackedLinear(nn.Module):
    """k nn.Linear of one shape -> (k, N, in) to (k, N, out), network i through layer i."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.register_buffer("weight", torch.stack([layer.weight.t() for layer in layers]))
        biases = [
            torch.zeros(layer.out_features) if layer.bias is None else layer.bias
            for layer in layers
        ]
        self.register_buffer("bias", torch.stack(biases)[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def stacked_conv(layers: list[nn.Conv2d]) -> nn.Conv2d:
    """k nn.Conv2d of one shape -> one with k times the channels in k groups."""
    first, k = layers[0], len(layers)
    conv = nn.Conv2d(
        k * first.in_channels,
        k * first.out_channels,
        first.kernel_size,
        first.stride,
        first.padding,
        first.dilation,
        groups=k * first.groups,
        bias=first.bias is not None,
        padding_mode=first.padding_mode,
    )
    conv.weight = nn.Parameter(torch.cat([layer.weight for layer in layers]), False)
    if first.bias is not None:
        conv.bias = nn.Parameter(torch.cat([layer.bias for layer in layers]), False)
    return conv


def stacked_norm(layers: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    """k nn.BatchNorm2d of one width -> one k times as wide, with their running statistics."""
    first, k = layers[0], len(layers)
    norm = nn.BatchNorm2d(k * first.num_features, first.eps, affine=first.affine)
    for name in ("running_mean", "running_var", *(("weight", "bias") if first.affine else ())):
        getattr(norm, name).data = torch.cat([getattr(layer, name) for layer in layers])
    return norm


@torch.no_grad()
def stack(chains: list[list[nn.Module]]) -> nn.Sequential:
    """k chains of the same layers, each a network's (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
    Dropout, Flatten, Linear, in one order) -> one chain, in eval mode: (N, k * C, H, W), network
    i reading channels i*C to (i+1)*C - 1, -> (k, N, out), network i's outputs at i. Its outputs
    are the k chains' own (in eval mode) up to float rounding."""
    k, stacked = len(chains), []
    if len({len(chain) for chain in chains}) != 1:
        raise ValueError("stack takes networks of one shape: their chains differ in length")
    for layers in zip(*chains):
        first = layers[0]
        if any(repr(layer) != repr(first) for layer in layers):  # type, sizes and settings
            raise ValueError(f"stack takes networks of one shape: their {first} layers differ")
        if isinstance(first, nn.Conv2d):
            stacked.append(stacked_conv(layers))
        elif isinstance(first, nn.BatchNorm2d):
            stacked.append(stacked_norm(layers))
        elif isinstance(first, nn.Linear):
            stacked.append(StackedLinear(layers))
        elif isinstance(first, nn.Flatten):
            stacked.append(Unstack(k))
        elif isinstance(first, (nn.ReLU, nn.MaxPool2d)):
            stacked.append(first)  # no weights: one serves all k
        elif not isinstance(first, nn.Dropout):  # off when answering
            raise TypeError(f"stack does not know how to stack {type(first).__name__}")
    return nn.Sequential(*stacked).eval().requires_grad_(False)
