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
- `thick`, `slant`, `style`, `style_elastic`, `style_wide`, `style_erase`, `style_bold`,
`style_blur`, `style_warp`:
  other writers' styles, still per digit and label-safe
  (`DigitStyle`): the pen's width (each digit blended part way toward its 3x3 grey dilation or
  erosion, the morphology of a thicker or thinner pen at 14x14), wider slant and proportions
  (rotation +-15 deg, horizontal shear +-20 deg, width/height ratio 0.8-1.25), and with
  `style_elastic` the elastic field on top; `style_wide` widens the slant and proportions again
  (+-20 deg, +-30 deg, 0.71-1.4), `style_erase` pastes paper over a small part of half the digits
  (a pen that skipped, a stroke a scanner lost); `style_bold` lets the pen go up to a full
  dilation, `style_blur` softens each digit part way toward a Gaussian blur (a low-resolution
  scan enlarged, a blurred photo), `style_warp` moves each digit's middle up or down and left or
  right (a small head on a long tail). MNIST's writers are Census employees and students
  (LeCun et al., 1998); a visitor's pen, slant and proportions vary more, and the networks only
  ever see the 1000 pairs of their round, so the variety has to come from distortions.
- `style_flag`, `style_flag_foot`, `style_flag_bar`, `style_bar`, `style_slash`, `style_hook`,
  `style_conventions`, `style_gap`, `style_apart`, `style_conventions_gap_apart`,
  `style_conventions_quarter`, `style_conventions_most`: `style` with writing conventions drawn
  onto digits of their class first (`digitpair/core/conventions.py`: a flag and a foot on 1s, a
  bar across 7s, a slash through 0s, a hooked tail on 9s, a 5's bar lifted off its stem, a 4's
  stem apart from its arm and bar), each with its probability. The class decides what is drawn,
  so only networks trained with digit labels get them (as only they swap digits); the others
  train as with `style`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .conventions import Conventions, draw_conventions

ELASTIC_ALPHA, ELASTIC_SIGMA = 8.5, 2.0  # pixels, for 14x14 digits (see above)


@dataclass(frozen=True)
class DigitStyle:
    """The ranges of one per-digit, label-safe distortion; each digit draws its own values."""

    degrees: float = 10.0  # rotation +-
    scale: tuple[float, float] = (0.9, 1.1)  # overall size
    shift_px: float = 2.0  # translation +-, each axis
    shear: float = 0.0  # horizontal shear +- degrees: slant
    aspect: float = 1.0  # width/height ratio in [1/aspect, aspect], log-uniform
    thickness: float = 0.0  # pen: blend of up to this much toward dilation or erosion
    elastic: float = 0.0  # alpha of the elastic field in pixels (sigma ELASTIC_SIGMA); 0: none
    erase: float = 0.0  # largest share of the box a paper rectangle covers; 0: none
    blur: float = 0.0  # blend of up to this much toward a BLUR_SIGMA Gaussian blur
    warp: float = 0.0  # largest shift of the digit's middle, in half-box units
    conventions: Conventions = Conventions()  # writing conventions drawn on digits of their class


WIDER = dict(degrees=15.0, shear=20.0, aspect=1.25)
WIDEST = dict(degrees=20.0, shear=30.0, aspect=1.4)
# Random erasing (Zhong et al., 2020) with torchvision's aspect range but a smaller area: its
# default of up to 1/3 of the box takes a 7's bar or an 8's loop, and the label with it.
ERASE, ERASE_P, ERASE_RATIO = 0.15, 0.5, (0.3, 3.3)
BLUR_SIGMA = (
    1.0  # px at 14x14: an 8x8 scan enlarged bilinearly (UCI) is this soft in the 14x14 field
)
PEN = 0.7  # a full 3x3 dilation at 14x14 (+2 px at 28x28) fills the loops of a 6 or an 8
PER_DIGIT = {
    "safe": DigitStyle(),
    "elastic": DigitStyle(elastic=ELASTIC_ALPHA),
    "thick": DigitStyle(thickness=PEN),
    "slant": DigitStyle(**WIDER),
    "style": DigitStyle(**WIDER, thickness=PEN),
    "style_elastic": DigitStyle(**WIDER, thickness=PEN, elastic=ELASTIC_ALPHA),
    "style_wide": DigitStyle(**WIDEST, thickness=PEN),
    "style_erase": DigitStyle(**WIDER, thickness=PEN, erase=ERASE),
    "style_bold": DigitStyle(**WIDER, thickness=1.0),
    "style_blur": DigitStyle(**WIDER, thickness=PEN, blur=1.0),
    "style_warp": DigitStyle(**WIDER, thickness=PEN, warp=0.2),  # the middle up to 1.4 px
}
# Writing conventions (digitpair/core/conventions.py) on top of `style`, each alone and together.
CONVENTIONS = {
    "flag": Conventions(flag=0.5),
    "flag_foot": Conventions(flag=0.5, foot=0.25),
    "flag_bar": Conventions(flag=0.5, bar=0.5),
    "bar": Conventions(bar=0.5),
    "slash": Conventions(slash=0.5),
    "hook": Conventions(hook=0.5),
    "conventions": Conventions(flag=0.5, foot=0.25, bar=0.5, slash=0.5, hook=0.5),
    "gap": Conventions(gap=0.5),
    "apart": Conventions(apart=0.5),
    "conventions_gap_apart": Conventions(
        flag=0.5, foot=0.25, bar=0.5, slash=0.5, hook=0.5, gap=0.5, apart=0.5
    ),
    # `conventions` drawn on a quarter and on three quarters of their digits instead of half.
    "conventions_quarter": Conventions(flag=0.25, foot=0.125, bar=0.25, slash=0.25, hook=0.25),
    "conventions_most": Conventions(flag=0.75, foot=0.375, bar=0.75, slash=0.75, hook=0.75),
}
PER_DIGIT.update(
    {
        f"style_{name}": DigitStyle(**WIDER, thickness=PEN, conventions=conventions)
        for name, conventions in CONVENTIONS.items()
    }
)
AUGMENTATIONS = ("none", "seed", *PER_DIGIT)


def seed_crop_flip(x: torch.Tensor, g: torch.Generator, padding: int = 4) -> torch.Tensor:
    """v2.RandomCrop(14, padding=4) then v2.RandomHorizontalFlip(), per sample. x: (N, C, H, W)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)  # zero fill, as v2.Pad
    top = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    top, left, flip = top.to(x.device), left.to(x.device), flip.to(x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
    cols = torch.where(flip[:, None, None], cols.flip(-1), cols)  # flip = read columns backwards
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def affine_theta(
    angle: torch.Tensor,
    scale: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
    slope: torch.Tensor | None = None,
    ratio: torch.Tensor | None = None,
) -> torch.Tensor:
    """(M, 2, 3) `F.affine_grid` matrices: each digit stretched (width/height ratio**2), sheared
    (x += slope * y), rotated by `angle` radians and scaled about its centre, then shifted by
    (tx, ty) grid units. The matrix holds the inverse map, from output to input coordinates; it
    is torchvision's `affine(angle=-degrees, scale=scale, shear=[-shear_degrees, 0])` without the
    stretch (`tests/test_augment.py`)."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    inverse = torch.stack((torch.stack((cos, -sin), 1), torch.stack((sin, cos), 1)), 1)  # (M, 2, 2)
    if slope is not None:
        m = len(angle)
        unshear = torch.stack(
            (
                torch.stack((torch.ones(m), -slope), 1),
                torch.stack((torch.zeros(m), torch.ones(m)), 1),
            ),
            1,
        )
        inverse = torch.diag_embed(torch.stack((1 / ratio, ratio), 1)) @ unshear @ inverse
    return torch.cat((inverse, torch.stack((tx, ty), 1)[:, :, None]), 2)


def random_affine_grid(
    x: torch.Tensor,
    g: torch.Generator,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shift_px: float = 2.0,
    shear: float = 0.0,
    aspect: float = 1.0,
) -> torch.Tensor:
    """The sampling grid (M, H, W, 2), on x's device, of an independent small affine per image of x
    (M, 1, H, W), `affine_theta`'s. Without shear and aspect the draws are exactly the `safe`
    ones."""
    m, _, h, w = x.shape
    angle = (torch.rand(m, generator=g) * 2 - 1) * math.radians(degrees)
    s = scale[0] + torch.rand(m, generator=g) * (scale[1] - scale[0])
    # affine_grid works in [-1, 1] coordinates: a shift of k pixels is 2k/size.
    tx = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / w
    ty = (torch.rand(m, generator=g) * 2 - 1) * shift_px * 2 / h
    slope = ratio = None
    if shear or aspect != 1.0:
        slope = torch.tan((torch.rand(m, generator=g) * 2 - 1) * math.radians(shear))
        ratio = torch.exp((torch.rand(m, generator=g) * 2 - 1) * math.log(aspect)).sqrt()
    return F.affine_grid(
        affine_theta(angle, s, tx, ty, slope, ratio).to(x), list(x.shape), align_corners=False
    )


def resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear, zero (=paper) fill, as torchvision's affine and elastic."""
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_affine(
    x: torch.Tensor,
    g: torch.Generator,
    degrees: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shift_px: float = 2.0,
) -> torch.Tensor:
    """An independent small affine per image. x: (M, 1, H, W) -> same shape."""
    return resample(x, random_affine_grid(x, g, degrees, scale, shift_px))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """torchvision's 1-d blur kernel: a Gaussian of std `sigma` px, size int(8 sigma + 1) made
    odd."""
    size = int(8 * sigma + 1) | 1
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    return torch.softmax(-((offsets / sigma) ** 2) / 2, 0)


@functools.lru_cache(
    maxsize=8
)  # built once per size: every training batch draws its fields with it
def blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n) B with v @ B = v blurred along its length (reflect padding, `gaussian_kernel`).

    torchvision blurs with the 2-d kernel, outer(k, k): a 17x17 convolution per image, 12 ms for a
    batch's 200 fields on one core. Blurring rows then columns is the same sum, and as two small
    matrix products it takes 0.4 ms."""
    kernel = gaussian_kernel(sigma)
    pad = kernel.shape[0] // 2
    basis = F.pad(
        torch.eye(n)[:, None, :], (pad, pad), mode="reflect"
    )  # (n, 1, n + 2 pad): e_i, padded
    return F.conv1d(basis, kernel.view(1, 1, -1))[:, 0, :]  # row i: the blur of e_i


def elastic_displacement(
    m: int,
    h: int,
    w: int,
    g: torch.Generator,
    alpha: float = ELASTIC_ALPHA,
    sigma: float = ELASTIC_SIGMA,
) -> torch.Tensor:
    """(M, H, W, 2) grid offsets in [-1, 1] units: v2.ElasticTransform's field, drawn per image.

    Uniform noise in [-1, 1], blurred like v2.functional.gaussian_blur (reflect padding), times
    `alpha` pixels = alpha * 2 / size grid units (torchvision's own `alpha` is twice ours: it
    scales by alpha / size, i.e. alpha / 2 pixels)."""
    noise = torch.rand(2 * m, h, w, generator=g) * 2 - 1  # dx of each image, then dy
    field = blur_matrix(h, sigma).T @ noise @ blur_matrix(w, sigma)  # columns, then rows
    dx, dy = field.view(2, m, h, w)
    return torch.stack((dx * alpha * 2 / w, dy * alpha * 2 / h), -1)


def pen_width(x: torch.Tensor, g: torch.Generator, amount: float) -> torch.Tensor:
    """Each image (M, 1, H, W) blended toward its 3x3 grey dilation (a thicker pen) or erosion (a
    thinner one, by at most half as much: a 14x14 MNIST stroke is 1-2 px wide), by a uniform
    fraction."""
    m = len(x)
    t = (torch.rand(m, generator=g) * 2 - 1).to(x)[:, None, None, None] * amount
    return torch.where(t > 0, x + t * (dilate(x) - x), x + t / 2 * (x - erode(x)))


def dilate(x: torch.Tensor) -> torch.Tensor:
    """3x3 grey dilation of images (M, 1, H, W): the same strokes drawn a pixel wider each side."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def erode(x: torch.Tensor) -> torch.Tensor:
    """3x3 grey erosion of images (M, 1, H, W), over the pixels inside the image only: a pixel
    narrower."""
    return -F.max_pool2d(-x, 3, stride=1, padding=1)


def proportion_warp(m: int, h: int, w: int, g: torch.Generator, amount: float) -> torch.Tensor:
    """(M, H, W, 2) grid offsets that move each digit's middle by up to `amount` grid units along
    y and, drawn apart, along x, its edges fixed: the input row read at output height v is
    v + b (1 - v^2). A larger head on a shorter tail (a 9, a 7) or the reverse, a wider or narrower
    left side: proportions within a digit, which an affine keeps."""
    b = (torch.rand(2, m, 1, 1, generator=g) * 2 - 1) * amount
    v = torch.linspace(-1 + 1 / h, 1 - 1 / h, h)[None, :, None]  # the output pixels' centres
    u = torch.linspace(-1 + 1 / w, 1 - 1 / w, w)[None, None, :]
    return torch.stack(
        ((b[0] * (1 - u**2)).expand(m, h, w), (b[1] * (1 - v**2)).expand(m, h, w)), -1
    )


def soften(x: torch.Tensor, g: torch.Generator, amount: float) -> torch.Tensor:
    """Each image (M, 1, H, W) blended toward its Gaussian blur (std BLUR_SIGMA, `blur_matrix`) by a
    uniform fraction up to `amount`, then scaled back to its own darkest ink: a soft scan or a
    blurred photo of the same strokes, not a fainter pen."""
    m, _, h, w = x.shape
    t = (torch.rand(m, generator=g) * amount).to(x)[:, None, None, None]
    blurred = blur_matrix(h, BLUR_SIGMA).T.to(x) @ x @ blur_matrix(w, BLUR_SIGMA).to(x)
    out = x + t * (blurred - x)

    def peak(v):
        return v.amax((2, 3), keepdim=True)

    return out * (peak(x) / peak(out).clamp_min(1e-6))


def random_erase(x: torch.Tensor, g: torch.Generator, largest: float) -> torch.Tensor:
    """Half of the images (M, 1, H, W) get a rectangle of paper (0) pasted over them: area 2 % to
    `largest` of the box, width/height ratio log-uniform in ERASE_RATIO, anywhere inside the box:
    torchvision.transforms.v2.RandomErasing's draw per image in one go, a side longer than the box
    cut to it where torchvision draws again."""
    m, _, h, w = x.shape
    area = (0.02 + torch.rand(m, generator=g) * (largest - 0.02)) * h * w
    ratio = torch.exp(
        math.log(ERASE_RATIO[0])
        + torch.rand(m, generator=g) * math.log(ERASE_RATIO[1] / ERASE_RATIO[0])
    )
    high = (area / ratio).sqrt().round().clamp(1, h).long()
    wide = (area * ratio).sqrt().round().clamp(1, w).long()
    top = (torch.rand(m, generator=g) * (h - high + 1)).long()
    left = (torch.rand(m, generator=g) * (w - wide + 1)).long()
    erased = torch.rand(m, generator=g) < ERASE_P
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    box = (
        (rows >= top[:, None, None])
        & (rows < (top + high)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + wide)[:, None, None])
        & erased[:, None, None]
    )
    return x.masked_fill(box[:, None].to(x.device), 0.0)


def per_digit_augment(
    x: torch.Tensor,
    classes: torch.Tensor,
    g: torch.Generator,
    swap: bool,
    style: DigitStyle,
    labelled: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each digit its writing conventions (`labelled` only), pen width, affine (+ elastic field)
    (+ optional swap). Returns (input, target, classes)."""
    n, _, h, w = x.shape
    digits = x.reshape(2 * n, 1, h, w)
    if style.conventions and labelled:
        digits = draw_conventions(digits, classes.reshape(-1), g, style.conventions)
    grid = random_affine_grid(
        digits, g, style.degrees, style.scale, style.shift_px, style.shear, style.aspect
    )
    if style.elastic:
        grid = grid + elastic_displacement(2 * n, h, w, g, style.elastic).to(grid)
    if style.warp:
        grid = grid + proportion_warp(2 * n, h, w, g, style.warp).to(grid)
    if style.thickness:
        digits = pen_width(digits, g, style.thickness)
    if style.blur:
        digits = soften(digits, g, style.blur)
    digits = resample(digits, grid)
    if style.erase:
        digits = random_erase(digits, g, style.erase)
    x = digits.reshape(x.shape)
    if swap:
        flip = (torch.rand(n, generator=g) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(1), x)
        classes = torch.where(flip[:, None], classes.flip(1), classes)
    return x, (classes[:, 0] <= classes[:, 1]).long(), classes


def augment(
    kind: str,
    x: torch.Tensor,
    target: torch.Tensor,
    classes: torch.Tensor,
    g: torch.Generator,
    swap: bool,
    labelled: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply augmentation `kind` to a training batch; returns (input, target, classes). `labelled`:
    the network trains on digit labels, so class-dependent variants (conventions) may be drawn."""
    if kind == "none":
        return x, target, classes
    if kind == "seed":
        return seed_crop_flip(x, g), target, classes
    if kind in PER_DIGIT:
        return per_digit_augment(x, classes, g, swap, PER_DIGIT[kind], labelled)
    raise ValueError(f"unknown augmentation {kind!r}; choose one of {AUGMENTATIONS}")
