"""Writing conventions drawn onto training digits (digitpair/core/conventions.py): label-safe, and
drawn where the convention puts them."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from digitpair.core.augment import PER_DIGIT, augment
from digitpair.core.conventions import CLASS, Conventions, draw_conventions, ink_of


def line(image: torch.Tensor, points: list[tuple[int, int]], ink: float = 255.0) -> None:
    """Ink the pixels (x, y) along the polyline `points`, one px wide, into image (H, W)."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        steps = max(abs(x1 - x0), abs(y1 - y0)) * 2 + 1
        for t in np.linspace(0, 1, steps):
            image[round(y0 + t * (y1 - y0)), round(x0 + t * (x1 - x0))] = ink


def one() -> torch.Tensor:
    x = torch.zeros(14, 14)
    line(x, [(7, 2), (7, 11)])
    return x


def seven() -> torch.Tensor:
    x = torch.zeros(14, 14)
    line(x, [(3, 2), (10, 2), (7, 11)])
    return x


def zero() -> torch.Tensor:
    x = torch.zeros(14, 14)
    angles = np.linspace(0, 2 * np.pi, 80)
    for a in angles:
        x[round(7 + 4.5 * np.sin(a)), round(7 + 3.5 * np.cos(a))] = 255.0
    return x


def nine() -> torch.Tensor:
    x = torch.zeros(14, 14)
    for a in np.linspace(0, 2 * np.pi, 60):
        x[round(4 + 2 * np.sin(a)), round(7 + 2 * np.cos(a))] = 255.0
    line(x, [(9, 4), (9, 11)])
    return x


def five() -> torch.Tensor:
    x = torch.zeros(14, 14)
    line(x, [(10, 2), (4, 2), (4, 6), (8, 6), (10, 8), (9, 11), (3, 11)])
    return x


def four() -> torch.Tensor:
    x = torch.zeros(14, 14)
    line(x, [(3, 2), (3, 8), (11, 8)])  # the arm and the bar, one stroke
    line(x, [(9, 2), (9, 12)])  # the stem
    return x


def pieces(x: torch.Tensor) -> int:
    """Ink above 40 % of the peak in 8-connected pieces of 2 px or more."""
    ink = (x > 0.4 * x.max()).numpy()
    labels, n = ndimage.label(ink, structure=np.ones((3, 3)))
    return int((np.asarray(ndimage.sum(ink, labels, range(1, n + 1))) >= 2).sum())


def drawn(digit: torch.Tensor, name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(the digit with convention `name` drawn, the ink it added)."""
    g = torch.Generator().manual_seed(seed)
    out = draw_conventions(
        digit[None, None], torch.tensor([CLASS[name]]), g, Conventions(**{name: 1.0})
    )[0, 0]
    return out, (out - digit).clamp_min(0)


@pytest.mark.parametrize("seed", range(5))
def test_a_flag_starts_at_the_ones_top_and_goes_down_left(seed):
    out, added = drawn(one(), "flag", seed)
    rows, cols = torch.nonzero(added > 64, as_tuple=True)
    assert len(rows) >= 2
    assert rows.min() <= 3  # it leaves from the top (row 2) ...
    assert cols.min() < 6 and cols.max() <= 8  # ... to the left of the stem
    assert rows.max() > 3  # ... and down


@pytest.mark.parametrize("seed", range(5))
def test_a_bar_crosses_the_sevens_stem(seed):
    out, added = drawn(seven(), "bar", seed)
    rows, cols = torch.nonzero(added > 64, as_tuple=True)
    assert 5 <= rows.float().mean() <= 9  # 45-65 % of the way down the 2..11 box
    y = int(rows.float().mean().round())
    stem = (seven()[y] > 0).nonzero().float().mean()  # the stem's column at that height
    assert cols.min() < stem < cols.max()  # ink on both sides of the stem


@pytest.mark.parametrize("seed", range(5))
def test_a_slash_crosses_the_zeros_hole(seed):
    before = zero()
    assert before[6:9, 6:9].max() == 0  # the hole
    out, added = drawn(before, "slash", seed)
    assert out[6:9, 6:9].max() > 128  # inked through the middle
    rows, cols = torch.nonzero(added > 64, as_tuple=True)
    low, high = rows.argmax(), rows.argmin()
    assert cols[low] < cols[high]  # from bottom left to top right


@pytest.mark.parametrize("seed", range(5))
def test_a_hook_bends_the_nines_stem_left_at_the_bottom(seed):
    out, added = drawn(nine(), "hook", seed)
    rows, cols = torch.nonzero(added > 64, as_tuple=True)
    assert rows.min() >= 8  # only at the bottom of the stem (rows 4..11)
    assert cols.min() < 8  # to the left of the stem (column 9)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "digit, name, kept",
    [
        (five, "gap", lambda out: (out[2, 5:11] > 128).all() and (out[11] > 128).sum() >= 5),
        (four, "apart", lambda out: (out[2:13, 9] > 128).all() and (out[2:8, 3] > 128).all()),
    ],
    ids=["a gap lifts the 5's bar off its stem", "apart parts the 4's stem from its arm and bar"],
)
def test_paper_parts_a_digit_in_two_and_keeps_its_strokes(digit, name, kept, seed):
    before = digit()
    assert pieces(before) == 1
    out, _ = drawn(before, name, seed)
    assert pieces(out) == 2
    assert kept(out)  # the 5's bar and belly; the 4's whole stem and its arm
    assert out.sum() > 0.85 * before.sum()


def test_a_foot_lies_across_the_ones_bottom():
    out, added = drawn(one(), "foot")
    rows, cols = torch.nonzero(added > 64, as_tuple=True)
    assert rows.float().mean() == pytest.approx(11, abs=0.6)
    assert cols.min() < 7 < cols.max()


def test_a_convention_is_drawn_in_the_digits_own_ink():
    """A digit drawn in grey ink 150 gets a flag in that grey, not in full black ink."""
    grey = one() * 150 / 255
    out, added = drawn(grey, "flag")
    assert out.max() == pytest.approx(150, abs=1)
    assert ink_of(grey[None]).level.item() == pytest.approx(150, abs=1)


def test_only_digits_of_the_conventions_class_change():
    """Each convention touches its own class only: every other digit is returned as it was."""
    g = torch.Generator().manual_seed(0)
    digits = torch.stack([one(), seven(), zero(), nine(), five(), four(), one() * 0.5])[:, None]
    classes = torch.tensor([3, 2, 6, 8, 3, 6, 2])  # none of the conventions' classes
    everything = Conventions(**{name: 1.0 for name in CLASS})
    assert torch.equal(draw_conventions(digits, classes, g, everything), digits)
    classes = torch.tensor([1, 7, 0, 9, 5, 4, 2])
    out = draw_conventions(digits, classes, g, everything)
    assert all((out[i] != digits[i]).any() for i in range(6)) and torch.equal(out[6], digits[6])


def test_conventions_keep_the_labels_through_augment():
    """style_conventions returns the same targets and classes rule as style: the label is kept."""
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.stack([one(), seven()]), torch.stack([zero(), nine()])] * 50)
    classes = torch.tensor([[1, 7], [0, 9]] * 50)
    target = (classes[:, 0] <= classes[:, 1]).long()
    xa, ta, ca = augment("style_conventions", x, target, classes, g, swap=True)
    assert torch.equal(ta, (ca[:, 0] <= ca[:, 1]).long())
    assert sorted(map(tuple, ca.sort(1).values.tolist())) == sorted(
        map(tuple, classes.sort(1).values.tolist())
    )


def test_networks_without_digit_labels_train_as_with_style():
    """The class decides what is drawn, so a network trained without digit labels gets none:
    the same generator gives exactly `style`'s batch (the same operations on the same shapes)."""
    x = torch.rand(40, 2, 14, 14) * 255
    classes = torch.randint(0, 10, (40, 2))
    target = (classes[:, 0] <= classes[:, 1]).long()
    for kind in [k for k, style in PER_DIGIT.items() if style.conventions]:
        plain = augment(
            "style",
            x,
            target,
            classes,
            torch.Generator().manual_seed(1),
            swap=False,
            labelled=False,
        )
        conv = augment(
            kind, x, target, classes, torch.Generator().manual_seed(1), swap=False, labelled=False
        )
        assert all(torch.equal(a, b) for a, b in zip(plain, conv))
