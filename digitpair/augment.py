"""Augmentations on whole batches of pairs, per-sample random, driven by an explicit generator.

torchvision.transforms.v2 draws one set of parameters per call, so applying it per sample means
a Python loop over every image of every epoch. These batched versions draw per-sample
parameters in one go; `tests/test_augment.py` checks them against `torchvision.transforms.v2`.

- `none`: the identity.
- `seed`: the 2020 report's `RandomCrop(14, padding=4)` + `RandomHorizontalFlip()` on the
  2-channel pair image. Reproduced faithfully, and documented as harmful: a mirrored 2, 3, 4, 5,
  6, 7 or 9 is no longer that digit, and a shift by up to 4 of 14 pixels can push strokes out.
- `safe`: label-preserving. Each digit gets its own small affine (rotation +-10 deg, scale
  0.9-1.1, shift +-2 px), the mild distortions MNIST itself contains (Simard et al., 2003);
  with `swap`, the two digits trade places half the time and the target is recomputed from
  the classes. Swapping needs the classes (equal digits keep target 1), so it is only used for
  variants trained with digit labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "seed", "safe")


def seed_crop_flip(x: torch.Tensor, g: torch.Generator, padding: int = 4) -> torch.Tensor:
    """v2.RandomCrop(14, padding=4) then v2.RandomHorizontalFlip(), per sample. x: (N, C, H, W)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)                                      # zero fill, as v2.Pad
    top = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    top, left, flip = top.to(x.device), left.to(x.device), flip.to(x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, :] # (N, 1, W)
    cols = torch.where(flip[:, None, None], cols.flip(-1), cols)          # flip = read columns backwards
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols]          # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def random_affine(x: torch.Tensor, g: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1), shift_px: float = 2.0) -> torch.Tensor:
    """An independent small affine per image. x: (M, 1, H, W) -> same shape, zero (=paper) fill."""
    m, _, h, w = x.shape
    angle = (torch.rand(m, generator=g) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(m, generator=g) * (scale[1] - scale[0])
    # affine_grid works in [-1, 1] coordinates: a shift of k pixels is 2k/size.
    tx = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / w
    ty = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / h
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack((torch.stack((cos, -sin, tx), 1), torch.stack((sin, cos, ty), 1)), 1)  # (M, 2, 3)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def safe_augment(x: torch.Tensor, classes: torch.Tensor, g: torch.Generator,
                 swap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-digit affine (+ optional swap). Returns (input, target, classes)."""
    n = x.shape[0]
    x = random_affine(x.reshape(2 * n, 1, *x.shape[2:]), g).reshape(x.shape)
    if swap:
        flip = (torch.rand(n, generator=g) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(1), x)
        classes = torch.where(flip[:, None], classes.flip(1), classes)
    return x, (classes[:, 0] <= classes[:, 1]).long(), classes


def augment(kind: str, x: torch.Tensor, target: torch.Tensor, classes: torch.Tensor,
            g: torch.Generator, swap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply augmentation `kind` to a training batch; returns (input, target, classes)."""
    if kind == "none":
        return x, target, classes
    if kind == "seed":
        return seed_crop_flip(x, g), target, classes
    if kind == "safe":
        return safe_augment(x, classes, g, swap)
    raise ValueError(f"unknown augmentation {kind!r}; choose one of {AUGMENTATIONS}")
