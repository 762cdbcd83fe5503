"""Writing conventions drawn onto training digits: label-safe variants MNIST's writers rarely wrote.

MNIST's writers were American Census employees and students (LeCun et al., 1998). Elsewhere people
learn other conventions, and the pen digits (`digitpair/core/pen.py`, validation) show them: a 1
with a long flag (and sometimes a foot), a 7 with a bar across its stem, a slashed 0, a 9 whose stem
hooks left at the bottom. A network that saw none of them reads a flagged 1 as a 7, a slashed 0 as
an 8, a hooked 9 as a 3. Each convention is drawn onto a digit of its class, so the label holds by
construction:

- `flag`: from the 1's top, a stroke down and to the left, 30-70 degrees off the stem, 30-70 % of
  the digit's height, straight or slightly curved;
- `foot`: a short horizontal stroke across the 1's bottom;
- `bar`: a stroke across the 7's stem, 45-65 % of the way down, about level;
- `slash`: a stroke through the 0's middle, bottom left to top right, about as long as the 0 is
tall;
- `hook`: the 9's stem continued at the bottom by a curve to the left, 30-60 % of its height;
- `gap`: the 5's top bar lifted off its stem, as pen writers draw it in a stroke of its own: paper
  across the stem just under the bar;
- `apart`: the 4 in two strokes that do not meet, the arm and bar stopping short of the stem:
  paper down the stem's left edge from its top to 65-85 % of its height.

Drawn at 14x14 (the networks' input, as `drawing.preprocess` makes it), 24.0 % of the pen 5s and
17.1 % of the pen 4s are in two or more pieces, against 6.5 % and 1.6 % of round 0's MNIST
training 5s and 4s (a piece: 8-connected ink above 40 % of the peak, 2 px or more); the other
digits 0-6 % both. A closed top on 4s is not what differs: 11.4 % of pen 4s enclose a hole,
12.5 % of MNIST's (`python benchmarks/pen_pictures.py` prints both, per digit).

Each is drawn at 14x14 in the digit's own pen and ink: the stroke width (2 x area / perimeter of
its ink, as `drawing.stroke_width`) and the ink level of its strokes (their 90th percentile),
anti-aliased (each pixel covered by the distance from its centre to the stroke), anchored on the
digit's own ink: its top, its bottom, its box and the stem's column at a height. `gap` and `apart`
lay paper instead, 1-1.6 px wide, anti-aliased alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

INK = 0.5  # of a digit's peak: its strokes, for the box, the anchors and the pen's width
BEZIER_STEPS = 6  # a curved stroke as this many straight pieces


@dataclass(frozen=True)
class Conventions:
    """The probability that a digit of the convention's class gets it; 0: never."""

    flag: float = 0.0  # 1s
    foot: float = 0.0  # 1s
    bar: float = 0.0  # 7s
    slash: float = 0.0  # 0s
    hook: float = 0.0  # 9s
    gap: float = 0.0  # 5s
    apart: float = 0.0  # 4s

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))


CLASS = {"flag": 1, "foot": 1, "bar": 7, "slash": 0, "hook": 9, "gap": 5, "apart": 4}


@dataclass(frozen=True)
class Ink:
    """What the conventions are anchored on, per digit (M,), in pixels (x right, y down)."""

    top: torch.Tensor  # first row with ink
    bottom: torch.Tensor  # last row with ink
    left: torch.Tensor
    right: torch.Tensor
    top_x: torch.Tensor  # the ink's column in its top two rows (weighted by ink)
    bottom_x: torch.Tensor  # the same in its bottom two rows
    width: torch.Tensor  # the pen: mean stroke width, px
    level: torch.Tensor  # the ink of its strokes, 0-255

    @property
    def height(self) -> torch.Tensor:
        return self.bottom - self.top + 1


def ink_of(x: torch.Tensor) -> Ink:
    """x: (M, H, W) raw 0-255 digits -> their `Ink`."""
    m, h, w = x.shape
    peak = x.amax((1, 2), keepdim=True).clamp_min(1e-6)
    inked = x > INK * peak  # (M, H, W)
    rows, cols = torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype)
    any_row, any_col = inked.any(2), inked.any(1)  # (M, H), (M, W)
    top = torch.where(any_row, rows, h).amin(1)
    bottom = torch.where(any_row, rows, -1).amax(1)
    left = torch.where(any_col, cols, w).amin(1)
    right = torch.where(any_col, cols, -1).amax(1)

    def column(row_mask: torch.Tensor) -> torch.Tensor:
        weight = x * row_mask[:, :, None] * inked
        return (weight * cols).sum((1, 2)) / weight.sum((1, 2)).clamp_min(1e-6)

    top_x = column((rows >= top[:, None]) & (rows <= top[:, None] + 1))
    bottom_x = column((rows <= bottom[:, None]) & (rows >= bottom[:, None] - 1))
    padded = torch.nn.functional.pad(inked, (1, 1, 1, 1))
    perimeter = (padded[:, 1:] != padded[:, :-1]).sum((1, 2)) + (
        padded[:, :, 1:] != padded[:, :, :-1]
    ).sum((1, 2))
    width = (2.0 * inked.sum((1, 2)) / perimeter.clamp_min(1)).clamp(0.8, 3.0)
    strokes = torch.where(inked, x, torch.nan).flatten(1)
    level = strokes.nanquantile(0.9, dim=1)
    return Ink(top, bottom, left, right, top_x, bottom_x, width, level)


def column_at(x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """(M,) the ink's column (weighted mean) in row `row` (M,) of digits x (M, H, W)."""
    m, h, w = x.shape
    line = x[torch.arange(m), row.long().clamp(0, h - 1)]  # (M, W)
    cols = torch.arange(w, dtype=x.dtype)
    return (line * cols).sum(1) / line.sum(1).clamp_min(1e-6)


def bezier(start: torch.Tensor, control: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """(M, BEZIER_STEPS + 1, 2) points along quadratic Bezier curves; each argument (M, 2)."""
    t = torch.linspace(0, 1, BEZIER_STEPS + 1, dtype=start.dtype)[None, :, None]
    return (1 - t) ** 2 * start[:, None] + 2 * (1 - t) * t * control[:, None] + t**2 * end[:, None]


def cover(x: torch.Tensor, points: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """(M, H, W): how much of each pixel of x (M, H, W) a round pen `width` (M,) px covers along
    the polyline `points` (M, K, 2): its centre's distance to the line, +-0.5 px."""
    m, h, w = x.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij"
    )
    pixel = torch.stack((xs, ys), -1).reshape(1, 1, h * w, 2)  # (1, 1, HW, 2)
    a, b = points[:, :-1, None], points[:, 1:, None]  # (M, K-1, 1, 2)
    along = b - a
    t = (((pixel - a) * along).sum(-1) / (along * along).sum(-1).clamp_min(1e-9)).clamp(0, 1)
    distance = (pixel - (a + t[..., None] * along)).norm(dim=-1).amin(1)  # (M, HW)
    return (width[:, None] / 2 + 0.5 - distance).clamp(0, 1).view(m, h, w)


def stroke(
    x: torch.Tensor, points: torch.Tensor, width: torch.Tensor, level: torch.Tensor
) -> torch.Tensor:
    """Digits x (M, H, W) with a polyline `points` (M, K, 2) drawn over them (`cover`) in ink
    `level` (M,): each pixel keeps the darker of its own ink and the stroke's."""
    return torch.maximum(x, cover(x, points, width) * level[:, None, None])


def erase(x: torch.Tensor, points: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Digits x (M, H, W) with paper laid along a polyline (`cover`): the ink goes as covered."""
    return x * (1 - cover(x, points, width))


def uniform(m: int, g: torch.Generator, low: float, high: float) -> torch.Tensor:
    return low + torch.rand(m, generator=g) * (high - low)


def flag(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    # The flag leaves the stem's top 30-70 degrees to the left of the stem, whatever its slant.
    turn = uniform(m, g, math.radians(30), math.radians(70))
    length = uniform(m, g, 0.3, 0.7) * ink.height
    bend = uniform(m, g, -0.15, 0.15) * length  # the curve: the middle off the straight line
    start = torch.stack((ink.top_x, ink.top.to(x.dtype)), 1)
    down = torch.stack((ink.bottom_x - ink.top_x, ink.height.to(x.dtype)), 1)
    down = down / down.norm(dim=1, keepdim=True)
    direction = torch.stack(
        (
            down[:, 0] * torch.cos(turn) - down[:, 1] * torch.sin(turn),
            down[:, 0] * torch.sin(turn) + down[:, 1] * torch.cos(turn),
        ),
        1,
    )
    normal = torch.stack((direction[:, 1], -direction[:, 0]), 1)
    end = start + length[:, None] * direction
    control = (start + end) / 2 + bend[:, None] * normal
    return stroke(x, bezier(start, control, end), ink.width, ink.level)


def foot(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    y = ink.bottom.to(x.dtype)
    left = ink.bottom_x - uniform(m, g, 0.15, 0.3) * ink.height
    right = ink.bottom_x + uniform(m, g, 0.15, 0.3) * ink.height
    return stroke(
        x,
        torch.stack((torch.stack((left, y), 1), torch.stack((right, y), 1)), 1),
        ink.width,
        ink.level,
    )


def bar(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    y = ink.top + uniform(m, g, 0.45, 0.65) * (ink.height - 1)
    stem = column_at(x, y.round())
    half = uniform(m, g, 0.15, 0.3) * ink.height
    tilt = uniform(m, g, -math.radians(10), math.radians(10))
    offset = torch.stack((half * torch.cos(tilt), half * torch.sin(tilt)), 1)
    centre = torch.stack((stem, y), 1)
    return stroke(x, torch.stack((centre - offset, centre + offset), 1), ink.width, ink.level)


def slash(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    angle = uniform(m, g, math.radians(50), math.radians(80))
    half = uniform(m, g, 0.45, 0.65) * ink.height
    centre = torch.stack(((ink.left + ink.right) / 2, (ink.top + ink.bottom) / 2), 1).to(x.dtype)
    offset = half[:, None] * torch.stack((torch.cos(angle), -torch.sin(angle)), 1)  # up-right
    return stroke(x, torch.stack((centre - offset, centre + offset), 1), ink.width, ink.level)


def hook(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    start = torch.stack((ink.bottom_x, ink.bottom.to(x.dtype)), 1)
    drop = uniform(m, g, 0.0, 0.15) * ink.height  # how far the curve dips below the stem
    reach = uniform(m, g, 0.3, 0.6) * ink.height  # how far left it ends
    rise = uniform(m, g, 0.0, 0.25) * ink.height  # how far up it ends
    control = start + torch.stack((-0.3 * reach, 2 * drop), 1)
    end = start + torch.stack((-reach, -rise), 1)
    return stroke(x, bezier(start, control, end), ink.width, ink.level)


def gap(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m = len(x)
    # Under the bar (its own pen's width below the top), across the stem: the stem is the ink's
    # column a quarter of the way down, where a 5 has nothing else.
    y = (ink.top + ink.width * uniform(m, g, 0.9, 1.3) + 0.5).round()  # a whole row of paper
    stem = column_at(x, ink.top + 0.25 * (ink.height - 1))
    reach = ink.width * uniform(m, g, 1.2, 1.8)
    points = torch.stack((torch.stack((stem - reach, y), 1), torch.stack((stem + reach, y), 1)), 1)
    return erase(x, points, uniform(m, g, 1.0, 1.4))


def apart(x: torch.Tensor, ink: Ink, g: torch.Generator) -> torch.Tensor:
    m, h, w = x.shape
    # The stem: a 4's rightmost stroke over its top 40 % (the median of those rows' last inked
    # columns, less half the pen) down to its bottom (where a 4 is only its stem).
    peak = x.amax((1, 2), keepdim=True).clamp_min(1e-6)
    cols, rows = torch.arange(w, dtype=x.dtype), torch.arange(h, dtype=x.dtype)
    last = torch.where(x > INK * peak, cols, torch.tensor(-1.0, dtype=x.dtype)).amax(2)  # (M, H)
    upper = (rows >= ink.top[:, None]) & (rows <= ink.top[:, None] + 0.4 * ink.height[:, None])
    upper = upper & (last >= 0)
    right = torch.where(upper, last, torch.nan).nanmedian(1).values
    top = torch.stack((right - (ink.width - 1) / 2, ink.top.to(x.dtype)), 1)
    bottom = torch.stack((ink.bottom_x, ink.bottom.to(x.dtype)), 1)
    # Paper along its left edge, from above the top to 65-85 % of the way down.
    left = torch.stack((-(ink.width / 2 + 0.5), torch.zeros(m, dtype=x.dtype)), 1)
    along = bottom - top
    start = top + left - along / ink.height[:, None].to(x.dtype)
    end = top + left + uniform(m, g, 0.65, 0.85)[:, None] * along
    return erase(x, torch.stack((start, end), 1), uniform(m, g, 1.2, 1.6))


DRAW = {
    "flag": flag,
    "foot": foot,
    "bar": bar,
    "slash": slash,
    "hook": hook,
    "gap": gap,
    "apart": apart,
}


def draw_conventions(
    digits: torch.Tensor, classes: torch.Tensor, g: torch.Generator, conventions: Conventions
) -> torch.Tensor:
    """digits (M, 1, H, W) raw 0-255 of `classes` (M,): each digit of a convention's class gets it
    with its probability (drawn in the order of CLASS). Returns a new tensor."""
    out = digits[:, 0].clone()
    cpu_classes = classes.cpu()
    for name, digit_class in CLASS.items():
        p = getattr(conventions, name)
        if p == 0:
            continue
        chosen = (torch.rand(len(out), generator=g) < p) & (cpu_classes == digit_class)
        index = chosen.nonzero().flatten()
        if len(index) == 0:
            continue
        picked = out[index.to(out.device)].cpu().float()
        drawn = DRAW[name](picked, ink_of(picked), g)
        out[index.to(out.device)] = drawn.to(out)
    return out[:, None]
