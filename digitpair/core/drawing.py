"""A drawing (canvas, upload, file) -> the 14x14 digit the networks were trained on.

Canvas drawings are not MNIST: thick strokes, off-centre, any size. This does what MNIST did to
its scans: composite over white, grayscale, take the ink, crop to the ink's bounding box, scale
the longest side to 20 px keeping the aspect ratio, paste into 28x28 so the centre of mass sits
at the centre, then the course's 2x2 average pooling to 14x14. The result is raw 0-255 floats,
white digit on black, exactly like `mnist_to_pairs`' inputs.

A step MNIST did not need, measured and left off: the pen. Boxing a digit to 20 px scales its
strokes with it, so a small digit drawn with a broad pen arrives with strokes thicker than most
MNIST writers' (the UCI digits' median width is 3.1 px in the 28x28 field, MNIST's 1.95, USPS's
2.25). `even_pen` brings a drawing's stroke width into a band of MNIST's widths by a fractional grey
erosion or dilation. It lifts networks trained with the `safe` augmentation on UCI digits by 1-3
points, and costs networks trained with pen-width augmentation (`style`, as the served ones) 0.7-3.3
points (benchmarks/pen_screen.py, validation): they read a drawing best with its own pen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from .augment import dilate, erode

MAX_SIDE = 4096  # larger images are refused: nobody draws a digit on 17 megapixels
INK_LEVEL = 40  # 0-255; fainter differences from the paper are noise (JPEG, paper grain)
MIN_EXTENT = 0.08  # ink spanning less of the image's longest side than this is a dot, not a digit
BOX, FIELD = 20, 28  # MNIST: digit scaled into a 20x20 box, centred by mass in a 28x28 field
# Stroke widths (px in the 28x28 field, `stroke_width`) of MNIST's training digits: 25th and 75th
# percentiles, the band `even_pen` brings a drawing's pen into when asked (`preprocess(pen=...)`).
PEN_BAND = (1.65, 2.29)


class DrawingError(ValueError):
    """The input is not a usable drawing; the message tells the person what to do."""


class BlankDrawing(DrawingError):
    """Nothing is drawn: no image at all, or an image of one colour (an untouched or cleared
    pad)."""


def refuse_unit_scaled(values: np.ndarray) -> None:
    """Float pixels that all lie in [0, 1] with some variation: an image scaled to 0-1, which
    8-bit conversion would flatten to one colour and call blank (as `models.predict` refuses it)."""
    low, high = float(values.min()), float(values.max())
    if 0 <= low < high <= 1:
        raise DrawingError(
            f"the image's pixels run from {low:.3g} to {high:.3g}: scaled to 0-1? "
            "send 0-255 pixels (multiply by 255)"
        )


def load_image(value) -> PIL.Image.Image:
    """A Sketchpad value {"background", "layers", "composite"}, a FileData-like {"path": ...},
    a PIL image, a numpy array or a file path -> a PIL image (not yet decoded for files)."""
    if isinstance(value, dict) and "composite" in value:
        # The canvas's own composite is what the person sees; an API caller may send only a
        # background.
        value = (
            value["composite"] if value.get("composite") is not None else value.get("background")
        )
    if isinstance(value, dict) and "path" in value:
        value = value["path"]
    if value is None:
        raise BlankDrawing("nothing drawn: draw a digit")
    if isinstance(value, PIL.Image.Image):
        return value
    if isinstance(value, np.ndarray):
        if value.ndim not in (2, 3) or value.dtype.kind not in "biuf":
            raise DrawingError(
                f"an image array must be (H, W) or (H, W, C) numbers, got {value.dtype} "
                f"{value.shape}"
            )
        if (
            value.dtype == np.uint16
        ):  # 16 bits a channel: scaled to 8, as `ink` does for 16-bit files
            value = np.rint(value / 257)
        if value.dtype.kind == "f" and value.size:
            refuse_unit_scaled(value)
        return PIL.Image.fromarray(np.clip(value, 0, 255).astype(np.uint8))
    if isinstance(value, (str, os.PathLike)):
        name = Path(value).name
        try:
            return PIL.Image.open(value)
        except PIL.Image.DecompressionBombError:
            raise DrawingError(
                f"{name} is far too large an image; send at most {MAX_SIDE}x{MAX_SIDE} pixels"
            ) from None
        except PIL.UnidentifiedImageError:
            raise DrawingError(f"{name} is not an image (PNG, JPEG, WebP ...)") from None
        except OSError as e:
            raise DrawingError(f"cannot read {name}: {e}") from None
    raise DrawingError(f"expected an image, got {type(value).__name__}")


def ink(image: PIL.Image.Image) -> np.ndarray:
    """(H, W) float32 0-255: how far each pixel is from the paper colour, after compositing over
    white."""
    if max(image.size) > MAX_SIDE:
        raise DrawingError(
            f"the image is {image.width}x{image.height}; send at most {MAX_SIDE}x{MAX_SIDE} pixels"
        )
    try:
        if image.mode.startswith("I;16"):
            # 16-bit grayscale (PNG, TIFF): Pillow's convert() clips it at 255 rather than scaling,
            # which turns grey ink into paper and flattens smoothed edges. 65535 / 257 = 255.
            gray = np.asarray(image, dtype=np.float32) / 257
        else:
            if image.mode == "F":  # 32-bit float (TIFF): converted by clipping to 0-255
                refuse_unit_scaled(np.asarray(image, dtype=np.float32))
            rgba = image.convert(
                "RGBA"
            )  # decodes a file; P-with-transparency and LA become proper alpha
            # A transparent pixel is paper: the canvas exports RGB 0 under alpha 0, which is not
            # black ink.
            white = PIL.Image.new("RGBA", rgba.size, "white")
            gray = np.asarray(PIL.Image.alpha_composite(white, rgba).convert("L"), dtype=np.float32)
    except OSError as e:
        raise DrawingError(f"the image is damaged or truncated: {e}") from None
    # The paper colour is the border's median, so black-on-white drawings and white-on-black
    # MNIST scans both work, and an all-black canvas is "blank", not one big blob of ink.
    border = np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))
    return np.abs(gray - np.median(border))


def preprocess(value, pen: tuple[float, float] | None = None) -> torch.Tensor:
    """Any drawing `load_image` accepts -> (14, 14) float32, raw 0-255, white digit on black.

    Raises `DrawingError` for a blank image, a dot, a non-image or an oversized image. `pen`: a band
    of stroke widths to bring the drawing's pen into (`even_pen`); None (the app's) leaves it."""
    field = mnist_field(value)
    if pen is not None:
        field = even_pen(field, *pen)
    return pool(field)


def pool(field: np.ndarray) -> torch.Tensor:
    """(28, 28) -> (14, 14) float32: the course's 2x2 average pooling (data.mnist_to_pairs)."""
    return torch.from_numpy(field).reshape(FIELD // 2, 2, FIELD // 2, 2).mean((1, 3))


def stroke_width(field: np.ndarray) -> float:
    """Mean stroke width in pixels of a digit image: 2 x area / perimeter of its ink (above half its
    peak), exact for a long stroke of constant width (area = length x width, perimeter ~ 2 x
    length)."""
    inked = np.pad(field > field.max() / 2, 1)
    perimeter = (inked[1:] != inked[:-1]).sum() + (inked[:, 1:] != inked[:, :-1]).sum()
    return 2.0 * inked.sum() / max(int(perimeter), 1)


def even_pen(field: np.ndarray, low: float, high: float, steps: int = 3) -> np.ndarray:
    """`field` (28, 28) 0-255 with its stroke width brought into [low, high] px. A 3x3 erosion or
    dilation (the augmentation's pen: `augment.erode`, `augment.dilate`) moves a stroke's edges by a
    pixel each side (2 px of width), so blend toward it by the fraction of those 2 px still to go,
    up to `steps` times; peak back to 255, as MNIST's digits."""
    for _ in range(steps):
        width = stroke_width(field)
        gap = width - high if width > high else width - low if width < low else 0.0
        if abs(gap) < 0.1:
            break
        image = torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32))[None, None]
        moved = (erode(image) if gap > 0 else dilate(image))[0, 0].numpy()
        field = field + min(abs(gap) / 2, 1.0) * (moved - field)
        field = field * (255.0 / max(field.max(), 1e-6))
    return field.astype(np.float32)


def mnist_field(value) -> np.ndarray:
    """Any drawing -> (28, 28) float32 0-255: boxed and centred as MNIST's digits (before
    pooling)."""
    amount = ink(load_image(value))
    inked = amount > INK_LEVEL
    rows, cols = np.flatnonzero(inked.any(1)), np.flatnonzero(inked.any(0))
    if rows.size == 0:
        raise BlankDrawing("no ink found: the image is blank (or one colour); draw a digit")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    height, width = bottom - top, right - left
    if max(height, width) < MIN_EXTENT * max(amount.shape):
        raise DrawingError("the drawing is only a dot: draw a digit that fills more of the box")

    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    crop = PIL.Image.fromarray(amount[top:bottom, left:right])  # float32 -> mode "F"
    # BILINEAR in Pillow is antialiased when shrinking (its support widens with the factor), like
    # MNIST's.
    digit = np.asarray(crop.resize(size, PIL.Image.Resampling.BILINEAR), dtype=np.float32)
    digit = digit * (255.0 / digit.max())  # MNIST digits peak at 255 whatever the pen

    # Centre of mass onto index (14, 14), where MNIST's digits have theirs (pixel i centred at i),
    # clamped so that no ink is cut off. The shift is sub-pixel: rounding it to whole pixels
    # moves the same digit drawn at two sizes by up to half a pooled pixel, which changes it a lot.
    ys, xs = np.indices(digit.shape)
    mass = digit.sum()
    dy = float(np.clip(FIELD / 2 - (ys * digit).sum() / mass, 0, FIELD - digit.shape[0]))
    dx = float(np.clip(FIELD / 2 - (xs * digit).sum() / mass, 0, FIELD - digit.shape[1]))
    field = PIL.Image.fromarray(digit).transform(
        (FIELD, FIELD),
        PIL.Image.Transform.AFFINE,
        (1, 0, -dx, 0, 1, -dy),
        PIL.Image.Resampling.BILINEAR,
    )
    return np.array(field)
