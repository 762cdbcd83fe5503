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
- `elastic`: `safe` plus an elastic distortion of each digit (Simard et al., 2003): a random
  displacement field, uniform in [-1, 1] per pixel, smoothed by a Gaussian of std `sigma` and
  scaled by `alpha` pixels, added to the affine's sampling grid, so each digit is resampled once.
  Simard used alpha 34, sigma 4 on 28x28 digits. Our digits are 14x14: the smoothing length
  halves (sigma 2), and smoothing white noise over half the length leaves twice its amplitude,
  so the same distortion relative to the digit needs alpha 34 / 4 = 8.5 (displacement length
  1.2 px RMS here, 2.4 px on 28x28, `tests/test_augment.py`). Per digit, no mirroring, so the
  labels are kept; with `swap` as for `safe`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "seed", "safe", "elastic")
ELASTIC_ALPHA, ELASTIC_SIGMA = 8.5, 2.0   # pixels, for 14x14 digits (see above)


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


def random_affine_grid(x: torch.Tensor, g: torch.Generator, degrees: float = 10.0,
                       scale: tuple[float, float] = (0.9, 1.1), shift_px: float = 2.0) -> torch.Tensor:
    """The sampling grid (M, H, W, 2), on x's device, of an independent small affine per image of x (M, 1, H, W)."""
    m, _, h, w = x.shape
    angle = (torch.rand(m, generator=g) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(m, generator=g) * (scale[1] - scale[0])
    # affine_grid works in [-1, 1] coordinates: a shift of k pixels is 2k/size.
    tx = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / w
    ty = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / h
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack((torch.stack((cos, -sin, tx), 1), torch.stack((sin, cos, ty), 1)), 1)  # (M, 2, 3)
    return F.affine_grid(theta.to(x), list(x.shape), align_corners=False)


def resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear, zero (=paper) fill, as torchvision's affine and elastic."""
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(x: torch.Tensor, g: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1), shift_px: float = 2.0) -> torch.Tensor:
    """An independent small affine per image. x: (M, 1, H, W) -> same shape."""
    return resample(x, random_affine_grid(x, g, degrees, scale, shift_px))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """torchvision's 1-d blur kernel: a Gaussian of std `sigma` px, size int(8 sigma + 1) made odd."""
    size = int(8 * sigma + 1) | 1
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    return torch.softmax(-(offsets / sigma) ** 2 / 2, 0)


@functools.lru_cache(maxsize=8)   # built once per size: every training batch draws its fields with it
def blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n) B with v @ B = v blurred along its length (reflect padding, `gaussian_kernel`).

    torchvision blurs with the 2-d kernel, outer(k, k): a 17x17 convolution per image, 12 ms for a
    batch's 200 fields on one core. Blurring rows then columns is the same sum, and as two small
    matrix products it takes 0.4 ms."""
    kernel = gaussian_kernel(sigma)
    pad = kernel.shape[0] // 2
    basis = F.pad(torch.eye(n)[:, None, :], (pad, pad), mode="reflect")   # (n, 1, n + 2 pad): e_i, padded
    return F.conv1d(basis, kernel.view(1, 1, -1))[:, 0, :]                # row i: the blur of e_i


def elastic_displacement(m: int, h: int, w: int, g: torch.Generator, alpha: float = ELASTIC_ALPHA,
                         sigma: float = ELASTIC_SIGMA) -> torch.Tensor:
    """(M, H, W, 2) grid offsets in [-1, 1] units: v2.ElasticTransform's field, drawn per image.

    Uniform noise in [-1, 1], blurred like v2.functional.gaussian_blur (reflect padding), times
    `alpha` pixels = alpha * 2 / size grid units (torchvision's own `alpha` is twice ours: it
    scales by alpha / size, i.e. alpha / 2 pixels)."""
    noise = torch.rand(2 * m, h, w, generator=g) * 2 - 1                   # dx of each image, then dy
    field = blur_matrix(h, sigma).T @ noise @ blur_matrix(w, sigma)        # columns, then rows
    dx, dy = field.view(2, m, h, w)
    return torch.stack((dx * alpha * 2 / w, dy * alpha * 2 / h), -1)


def safe_augment(x: torch.Tensor, classes: torch.Tensor, g: torch.Generator, swap: bool,
                 elastic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-digit affine (+ elastic field) (+ optional swap). Returns (input, target, classes)."""
    n, _, h, w = x.shape
    digits = x.reshape(2 * n, 1, h, w)
    grid = random_affine_grid(digits, g)
    if elastic:
        grid = grid + elastic_displacement(2 * n, h, w, g).to(grid)
    x = resample(digits, grid).reshape(x.shape)
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
    if kind in ("safe", "elastic"):
        return safe_augment(x, classes, g, swap, elastic=kind == "elastic")
    raise ValueError(f"unknown augmentation {kind!r}; choose one of {AUGMENTATIONS}")
