"""The pen data's reader and the page's pen that draws it (digitpair/core/pen.py)."""

import os
import shutil

import numpy as np
import pytest
import torch

from digitpair.core import pen, writers
from digitpair.core.drawing import preprocess
from digitpair.core.models import Prediction


def ink_rows_cols(image: np.ndarray, level: int = 128) -> tuple[np.ndarray, np.ndarray]:
    inked = image < level  # black ink on white paper
    return np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))


@pytest.mark.parametrize("brush", [12, 24, 36])
def test_a_straight_stroke_is_as_wide_as_the_brush(brush):
    """A horizontal stroke from x=60 to x=220 at y=140: brush px tall (half-covered edge pixels
    count as half), and as long as the stroke plus a round cap of brush/2 at each end."""
    image = pen.draw([np.array([[60.0, 140.0], [220.0, 140.0]])], brush=brush)
    ink = (255 - image.astype(float)) / 255
    middle = ink[:, 140]  # a column through the stroke's middle
    assert middle.sum() == pytest.approx(brush, abs=0.5)
    rows, cols = ink_rows_cols(image)
    assert cols[0] == pytest.approx(60 - brush / 2, abs=1) and cols[-1] == pytest.approx(
        220 + brush / 2 - 1, abs=1
    )
    assert rows[0] == pytest.approx(140 - brush / 2, abs=1) and rows[-1] == pytest.approx(
        140 + brush / 2 - 1, abs=1
    )


def test_round_caps_and_joins():
    """A stroke's end is a half disc: the ink at the cap's tip narrows as a circle does, and a
    right-angle corner is rounded on the outside (no ink at the square corner's tip)."""
    image = pen.draw([np.array([[100.0, 100.0], [200.0, 100.0], [200.0, 200.0]])], brush=24)
    assert image[100, 100 - 11] < 64  # on the axis, just inside the cap: ink
    assert image[100 - 11, 100 - 11] > 192  # the square cap's corner: paper
    assert image[100 - 11, 200 + 11] > 192  # the outside of the corner is round: paper
    assert image[100, 212 - 2] < 64  # but the join's outside at the stroke's side is inked


def test_a_known_shape_lands_in_its_box():
    """An L of known proportions placed 200 px tall at (30, 40): its ink box is the trajectory's
    box grown by the brush's radius on each side."""
    strokes = [np.array([[0.0, 0.0], [0.0, 10.0], [5.0, 10.0]])]  # 5 wide, 10 tall, in device units
    placed = pen.place(strokes, height=200, corner=(30.0, 40.0))
    np.testing.assert_allclose(np.concatenate(placed).min(0), [30, 40])
    np.testing.assert_allclose(np.concatenate(placed).max(0), [130, 240])
    rows, cols = ink_rows_cols(pen.draw(placed, brush=24))
    assert (cols[0], cols[-1], rows[0], rows[-1]) == pytest.approx((18, 141, 28, 251), abs=1)


def test_random_places_keep_the_ink_on_the_paper():
    strokes = [np.array([[0.0, 0.0], [3.0, 50.0]]), np.array([[-20.0, 10.0], [40.0, 12.0]])]
    rng = np.random.default_rng(0)
    for _ in range(50):
        placed = np.concatenate(pen.random_place(strokes, rng))
        height = np.ptp(placed[:, 1])
        assert height <= pen.HEIGHTS[1] + 1e-6
        assert (placed.min(0) >= pen.BRUSH / 2 - 1e-6).all() and (
            placed.max(0) <= pen.PAPER - pen.BRUSH / 2 + 1e-6
        ).all()


def test_a_random_place_moves_a_character_as_one_its_strokes_where_the_writer_put_them():
    # A four's two strokes, touching: placed, they still touch, at the same scale and offsets.
    strokes = [
        np.array([[0.0, 0.0], [0.0, 30.0], [25.0, 30.0]]),
        np.array([[20.0, 0.0], [20.0, 50.0]]),
    ]
    rng = np.random.default_rng(0)
    for _ in range(50):
        placed = pen.random_place(strokes, rng)
        scale = np.ptp(np.concatenate(placed)[:, 1]) / 50
        shifts = [p - s * scale for p, s in zip(placed, strokes)]
        np.testing.assert_allclose(shifts[0] - shifts[0][0], 0, atol=1e-9)
        np.testing.assert_allclose(shifts[1] - shifts[0][0], 0, atol=1e-9)


@pytest.fixture(scope="module")
def digits() -> pen.PenSet:
    try:
        return pen.load("digits")
    except pen.PenError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


def test_the_pen_digits_are_the_documented_set(digits):
    """The README's counts: 8,685 digits, each 795-1,011, from 12 labs; strokes index their
    points."""
    assert len(digits) == 8685
    counts = np.unique(digits.label, return_counts=True)[1]
    assert counts.min() == 795 and counts.max() == 1011
    assert len(set(digits.lab)) == 12
    total = sum(len(s) for i in range(len(digits)) for s in digits.strokes(i))
    assert total == len(digits.points)


def test_a_subset_keeps_each_characters_strokes(digits):
    keep = digits.lab == "imp"
    part = digits.subset(keep)
    assert len(part) == keep.sum() == 257
    for j, i in enumerate(np.flatnonzero(keep)[:20]):
        assert all(
            np.array_equal(a, b) for a, b in zip(part.strokes(j), digits.strokes(i), strict=True)
        )


def test_a_damaged_pen_file_is_refused(digits, tmp_path):
    for name in ("digits.npz", "SHA256SUMS"):
        shutil.copy(pen.pen_folder() / name, tmp_path / name)
    raw = bytearray((tmp_path / "digits.npz").read_bytes())
    raw[len(raw) // 2] ^= 0x10
    (tmp_path / "digits.npz").write_bytes(bytes(raw))
    with pytest.raises(pen.PenError, match="does not match its SHA256SUMS entry"):
        pen.load("digits", tmp_path)
    with pytest.raises(pen.PenError, match=pen.PEN_ENV):
        pen.load("digits", tmp_path / "absent")


def test_drawn_digits_reach_the_networks_as_the_pages_do(digits):
    """Drawings are reproducible from the seed, black on white at 280x280, and preprocess turns
    them into centred 14x14 digits."""
    drawings = pen.Drawings(digits.subset(np.arange(len(digits)) < 30))
    again = pen.Drawings(digits.subset(np.arange(len(digits)) < 30))
    assert drawings[7].shape == (280, 280) and drawings[7].dtype == np.uint8
    assert np.array_equal(drawings[7], again[7])
    assert drawings[7][0].min() == 255 and drawings[7].min() == 0
    x = preprocess(drawings[7])
    assert x.shape == (14, 14) and x.max() > 200


def test_a_refused_drawing_counts_as_misread():
    """A dot is refused by preprocess as on the page; reading it counts it wrong, not skipped."""
    dot = pen.draw([np.array([[140.0, 140.0]])], brush=12)
    digit = pen.draw([np.array([[140.0, 40.0], [140.0, 240.0]])], brush=24)
    w = writers.Writers("pen", "test", [digit, dot], torch.tensor([1, 1]), np.array(["a", "b"]))
    assert w.refused.tolist() == [False, True]

    class Ones:
        def predict(self, x):
            probs = torch.zeros(*x.shape[:2], 10)
            probs[..., 1] = 1
            return Prediction(p_leq=torch.ones(len(x)), digit_probs=probs)

    reading = writers.score(Ones(), w, rounds=1)
    assert reading.digit_acc == 50.0 and reading.per_group == {"a": 100.0, "b": 0.0}
    assert reading.per_digit[1] == 50.0
