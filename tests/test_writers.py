"""Other writers' digits (digitpair/core/writers.py) and the drawing path they share with the
app."""

import gzip
import os
import shutil

import numpy as np
import PIL.Image
import PIL.ImageFilter
import pytest
import torch
import torch.nn.functional as F

from digitpair.core import writers
from digitpair.core.drawing import PEN_BAND, even_pen, preprocess, stroke_width
from digitpair.core.models import Prediction

USPS = writers.usps_folder()


@pytest.fixture(scope="module")
def usps() -> writers.Writers:
    try:
        return writers.load_usps()
    except writers.WritersError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


def test_usps_is_the_documented_split(usps):
    """7291 digits with the README's class counts, drawn as white ink on black paper."""
    counts = torch.bincount(usps.labels, minlength=10).tolist()
    assert counts == [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
    assert usps.images.shape == (7291, 96, 96) and usps.images.dtype == np.uint8
    border = np.concatenate(
        (usps.images[:, 0], usps.images[:, -1], usps.images[:, :, 0], usps.images[:, :, -1]), 1
    )
    assert border.max() == 0 and (usps.images.max((1, 2)) > 200).all()


def test_a_damaged_usps_file_is_refused(usps, tmp_path):
    shutil.copy(USPS / writers.USPS_FILE, tmp_path / writers.USPS_FILE)
    raw = bytearray((tmp_path / writers.USPS_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0x10
    (tmp_path / writers.USPS_FILE).write_bytes(bytes(raw))
    with pytest.raises(writers.WritersError, match="does not match its SHA-256.*damaged"):
        writers.load_usps(tmp_path)
    with pytest.raises(
        writers.WritersError, match=f"cannot read the USPS digits.*{writers.USPS_ENV}"
    ):
        writers.load_usps(tmp_path / "absent")


def test_a_valid_file_with_other_digits_is_refused_too(tmp_path):
    """The checksum is of the file, so even a well-formed file of other digits is not read as
    USPS."""
    (tmp_path / writers.USPS_FILE).write_bytes(gzip.compress(b"1 " + b"-1 " * 256 + b"\n"))
    with pytest.raises(writers.WritersError, match="SHA-256"):
        writers.load_usps(tmp_path)


class Oracle:
    """Reads every digit as `labels` say, except those in `wrong`, read as `wrong[i]`."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, wrong: dict[int, int]):
        self.lookup = {x.numpy().tobytes(): int(y) for x, y in zip(inputs, labels)}
        for i, read in wrong.items():
            self.lookup[inputs[i].numpy().tobytes()] = read

    def predict(self, x: torch.Tensor) -> Prediction:
        read = torch.tensor([[self.lookup[d.numpy().tobytes()] for d in pair] for pair in x])
        probs = F.one_hot(read, 10).float()
        return Prediction((read[:, 0] <= read[:, 1]).float(), probs)


def test_read_counts_digits_pairs_and_confusions():
    """Digits: each once per position; one 3 read as 8 is 2 wrong of 2n; confusions name it."""
    rng = np.random.default_rng(0)
    images = np.stack(
        [writers.render((rng.random((8, 8)) > 0.5) * 255.0) for _ in range(20)]
    )  # 20 random shapes
    labels = torch.arange(20) % 10
    w = writers.Writers("test", "twenty shapes", images, labels)
    model = Oracle(w.inputs, labels, {3: 8})
    got = writers.score(model, w, rounds=4, seed=0)
    assert got.digit_acc == pytest.approx(100 * 38 / 40)
    assert got.per_digit[3] == pytest.approx(50.0) and all(
        got.per_digit[d] == 100 for d in range(10) if d != 3
    )
    assert got.confusions == ((3, 8, 2),)
    perfect = writers.score(Oracle(w.inputs, labels, {}), w, rounds=4, seed=0)
    assert perfect.pair_acc == 100.0 and perfect.digit_acc == 100.0


def draw(digit: np.ndarray, size: int, pen: str) -> PIL.Image.Image:
    """An MNIST digit as a person would draw it: black ink on a 280x280 white canvas, the digit's
    field `size` px wide, with the pen a quarter of an MNIST pixel thinner or thicker each side."""
    big = PIL.Image.fromarray(digit).resize((size, size), PIL.Image.Resampling.BILINEAR)
    mask = big.point(lambda v: 255 if v > 127 else 0)
    k = 2 * max(1, round(size / 28 / 4)) + 1
    if pen == "thin":
        mask = mask.filter(PIL.ImageFilter.MinFilter(k))
    if pen == "thick":
        mask = mask.filter(PIL.ImageFilter.MaxFilter(k))
    canvas = PIL.Image.new("L", (280, 280), 255)
    canvas.paste(PIL.Image.eval(mask, lambda v: 255 - v), ((280 - size) // 2, (280 - size) // 2))
    return canvas


def test_a_drawn_mnist_digit_comes_back_as_itself(mnist):
    """40 MNIST digits drawn at three sizes and three pen widths: preprocess gives back images close
    to their own 14x14 ones (correlation; measured medians 0.95-0.97, 10th percentiles
    0.88-0.95)."""
    for size in (100, 180, 260):
        for pen in ("thin", "as drawn", "thick"):
            corr = []
            for digit in mnist.train_images[:40]:
                own = F.avg_pool2d(digit[None, None].float(), 2).flatten()
                corr.append(
                    np.corrcoef(preprocess(draw(digit.numpy(), size, pen)).flatten(), own)[0, 1]
                )
            assert np.median(corr) > 0.94 and np.percentile(corr, 10) > 0.85, (size, pen)


def test_even_pen_brings_strokes_into_the_band():
    """A bar 6 px wide comes out within the band; one already in it is left exactly as it was."""
    field = np.zeros((28, 28), np.float32)
    field[4:24, 11:17] = 255
    low, high = PEN_BAND
    assert stroke_width(field) > high + 2
    assert low - 0.3 <= stroke_width(even_pen(field, low, high)) <= high + 0.3
    thin = np.zeros((28, 28), np.float32)
    thin[4:24, 13:15] = 255
    assert low <= stroke_width(thin) <= high and np.array_equal(even_pen(thin, low, high), thin)
