"""Drawing preprocessing: any drawing -> the 14x14 raw digit MNIST training pairs are made of."""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import pytest
import torch
import torch.nn.functional as F

from digitpair.core.drawing import MAX_SIDE, DrawingError, preprocess

TWO = [
    (0.1, 0.25),
    (0.4, 0.0),
    (0.8, 0.1),
    (0.85, 0.4),
    (0.5, 0.7),
    (0.1, 1.0),
    (0.9, 1.0),
]  # a "2" in a unit box


def canvas(size=400, left=0, top=0, scale=1.0, mode="L", paper=255, pen=0):
    """A "2" drawn with a pen whose width follows its size, like a person drawing small or large."""
    image = PIL.Image.new(mode, (size, size), paper)
    points = [(left + u * scale, top + v * scale) for u, v in TWO]
    PIL.ImageDraw.Draw(image).line(points, fill=pen, width=max(1, round(scale / 9)), joint="curve")
    return image


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_output_is_a_raw_mnist_style_digit():
    x = preprocess(canvas(left=100, top=80, scale=200))
    assert x.shape == (14, 14) and x.dtype == torch.float32
    assert (
        0 <= float(x.min()) and float(x.max()) <= 255 and float(x.max()) > 150
    )  # white digit on black
    assert (
        float(x[0].sum() + x[-1].sum() + x[:, 0].sum() + x[:, -1].sum()) == 0
    )  # MNIST's empty margin
    ys, xs = np.indices((14, 14))
    com = ((ys * x.numpy()).sum() / x.sum().item(), (xs * x.numpy()).sum() / x.sum().item())
    assert (
        abs(com[0] - 6.75) < 0.6 and abs(com[1] - 6.75) < 0.6
    )  # index 14 of 28 pooled: 6.75 of 14


def test_small_in_a_corner_equals_large_in_the_middle():
    small = preprocess(canvas(left=10, top=10, scale=70))
    large = preprocess(canvas(left=60, top=50, scale=280))
    assert correlation(small, large) > 0.9
    assert float((small - large).abs().mean()) < 12  # of 255
    elsewhere = preprocess(
        canvas(left=250, top=300, scale=70)
    )  # same size, other corner: same pixels
    assert torch.allclose(small, elsewhere, atol=1e-3)


def test_an_mnist_digit_drawn_on_a_canvas_comes_back_as_the_courses_14x14(mnist):
    # MNIST digits, inverted to black on white, 10x larger and off-centre on an 800 px canvas,
    # must come back as (nearly) the course's own 2x2-pooled image of the same digit.
    images = mnist.test_images[:50]
    pooled = F.avg_pool2d(images[:, None].float(), 2)[:, 0]
    scores = []
    for image, expected in zip(images, pooled):
        drawn = PIL.Image.fromarray(255 - image.numpy()).resize(
            (280, 280), PIL.Image.Resampling.BILINEAR
        )
        page = PIL.Image.new("L", (800, 800), 255)
        page.paste(drawn, (37, 431))
        scores.append(correlation(preprocess(page), expected))
    assert np.mean(scores) > 0.95 and np.min(scores) > 0.8


def test_mnist_itself_is_left_as_it_was(mnist):
    # White-on-black 28x28 MNIST is already a 20 px digit centred by mass: pooled, it is the
    # course's input.
    image = mnist.test_images[0]
    expected = F.avg_pool2d(image[None, None].float(), 2)[0, 0]
    assert correlation(preprocess(image.numpy()), expected) > 0.95


def test_every_input_form_gives_the_same_digit(tmp_path):
    image = canvas(left=100, top=80, scale=200).convert("RGBA")
    path = tmp_path / "two.png"
    image.save(path)
    expected = preprocess(image)
    forms = [
        np.asarray(image),
        np.asarray(image.convert("L")),
        str(path),
        path,
        {"path": str(path)},
        {"background": None, "layers": [], "composite": image},
        {"background": str(path), "layers": [], "composite": None},
    ]
    for form in forms:
        assert torch.allclose(preprocess(form), expected), type(form)


def test_transparency_is_paper_and_polarity_does_not_matter():
    black_on_white = canvas(left=100, top=80, scale=200)
    expected = preprocess(black_on_white)
    # The canvas's export: black ink on a transparent background whose hidden RGB is 0 (black).
    ink_on_clear = PIL.Image.new("RGBA", black_on_white.size, (0, 0, 0, 0))
    ink_on_clear.putalpha(PIL.Image.eval(black_on_white, lambda v: 255 - v))
    assert torch.allclose(preprocess(ink_on_clear), expected, atol=1.0)
    white_on_black = canvas(left=100, top=80, scale=200, paper=0, pen=255)  # MNIST's polarity
    assert torch.allclose(preprocess(white_on_black), expected)


def test_faint_pencil_is_stretched_to_full_contrast():
    faint = preprocess(canvas(left=100, top=80, scale=200, pen=150))
    assert torch.allclose(faint, preprocess(canvas(left=100, top=80, scale=200)), atol=1.0)


def test_16_bit_grayscale_works_like_its_8_bit_copy(tmp_path):
    # Grey ink at 100/255 of full scale, edges smoothed by an antialiased shrink, at 8 and 16 bits a
    # pixel.
    level = np.asarray(
        canvas(size=1600, left=400, top=320, scale=800, pen=100)
        .convert("F")
        .resize((400, 400), PIL.Image.Resampling.BILINEAR)
    )
    eight = PIL.Image.fromarray(np.rint(level).astype(np.uint8))
    sixteen = np.rint(level * 257).astype(np.uint16)
    PIL.Image.fromarray(sixteen).save(tmp_path / "two16.png")
    assert PIL.Image.open(tmp_path / "two16.png").mode == "I;16"
    edges = np.asarray(eight)[(np.asarray(eight) > 100) & (np.asarray(eight) < 255)]
    assert edges.size > 500 and len(np.unique(edges)) > 50  # smooth edges: many grey levels
    expected = preprocess(eight)
    for form in (tmp_path / "two16.png", sixteen):
        got = preprocess(form)
        assert torch.allclose(got, expected, atol=1.0), float(
            (got - expected).abs().max()
        )  # within rounding


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "nothing drawn"),
        ({"background": None, "layers": [], "composite": None}, "nothing drawn"),
        (PIL.Image.new("L", (400, 400), 255), "blank"),
        (PIL.Image.new("L", (400, 400), 0), "blank"),  # an all-black canvas
        (PIL.Image.new("RGBA", (400, 400), (0, 0, 0, 0)), "blank"),  # a fully transparent PNG
        (canvas(left=200, top=200, scale=10), "dot"),  # a single dot
        (np.zeros((4, 4, 4, 4)), "array must be"),
        (np.array([["a"]]), "array must be"),
        (42, "expected an image"),
    ],
)
def test_bad_drawings_are_refused_with_a_clear_message(value, message):
    with pytest.raises(DrawingError, match=message):
        preprocess(value)


def test_an_image_scaled_0_to_1_is_named_not_called_blank(tmp_path):
    unit = (
        np.asarray(canvas(left=100, top=80, scale=200), dtype=np.float32) / 255
    )  # black ink on 1.0 paper
    PIL.Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert PIL.Image.open(tmp_path / "unit.tif").mode == "F"  # a float TIFF
    for value in (tmp_path / "unit.tif", unit):
        with pytest.raises(
            DrawingError, match="pixels run from 0 to 1: scaled to 0-1. .*multiply by 255"
        ):
            preprocess(value)
    assert torch.equal(
        preprocess(unit * 255), preprocess(canvas(left=100, top=80, scale=200))
    )  # 0-255 floats work


def test_bad_files_are_refused_with_a_clear_message(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(DrawingError, match="notes.txt is not an image"):
        preprocess(str(text))
    with pytest.raises(DrawingError, match="cannot read"):
        preprocess(tmp_path / "missing.png")
    truncated = tmp_path / "truncated.png"
    canvas(left=100, top=80, scale=200).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DrawingError, match="damaged or truncated"):
        preprocess(truncated)
    huge = tmp_path / "huge.png"
    PIL.Image.new("1", (MAX_SIDE + 1, 8), 1).save(
        huge
    )  # the size is in the header: refused before decoding
    with pytest.raises(DrawingError, match=f"at most {MAX_SIDE}x{MAX_SIDE}"):
        preprocess(huge)
