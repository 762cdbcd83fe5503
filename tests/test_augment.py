import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from digitpair.core.augment import augment, random_affine, seed_crop_flip


def test_seed_crop_flip_matches_torchvision_v2():
    """Each output equals v2's pad(4) -> crop -> optional hflip at some offset: the report's
    transform."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, 14, 14) * 255
    out = seed_crop_flip(x, g)
    for xi, oi in zip(x, out):
        candidates = [
            TF.crop(TF.pad(xi, [4]), top, left, 14, 14) for top in range(9) for left in range(9)
        ]
        candidates += [TF.horizontal_flip(c) for c in candidates]
        assert any(torch.equal(oi, c) for c in candidates)
    # and the offsets are per sample: v2 itself (one call per image) shows the same spread.
    v2_out = torch.stack(
        [v2.Compose([v2.RandomCrop(14, padding=4), v2.RandomHorizontalFlip()])(xi) for xi in x]
    )
    assert (
        len({o.numpy().tobytes() for o in out}) == len({o.numpy().tobytes() for o in v2_out}) == 64
    )


def test_random_affine_is_identity_at_zero():
    x = torch.rand(5, 1, 14, 14)
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(
        random_affine(x, g, degrees=0, scale=(1, 1), shift_px=0), x, atol=1e-5, rtol=0
    )


def test_safe_swap_recomputes_target():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, 14, 14)
    classes = torch.randint(0, 10, (200, 2))
    target = (classes[:, 0] <= classes[:, 1]).long()
    xa, ta, ca = augment("safe", x, target, classes, g, swap=True)
    swapped = (ca != classes).any(1)
    assert 50 < swapped.sum() < 150
    assert torch.equal(ta, (ca[:, 0] <= ca[:, 1]).long())
    assert torch.equal(ca[swapped], classes[swapped].flip(1))


def test_augmentation_is_generator_deterministic():
    x, t, c = (
        torch.rand(10, 2, 14, 14),
        torch.zeros(10, dtype=torch.long),
        torch.zeros(10, 2, dtype=torch.long),
    )
    for kind in ("seed", "safe", "elastic"):
        a = augment(kind, x, t, c, torch.Generator().manual_seed(1), swap=True)[0]
        b = augment(kind, x, t, c, torch.Generator().manual_seed(1), swap=True)[0]
        assert torch.equal(a, b)


def test_elastic_field_is_torchvision_elastic_transform():
    """Our batched field is v2.ElasticTransform's (blurred uniform noise, scaled), and sampling the
    digit through identity + field is v2.functional.elastic with that field, image by image."""
    from digitpair.core.augment import elastic_displacement, gaussian_kernel, resample

    m, alpha, sigma = 6, 8.5, 2.0
    field = elastic_displacement(m, 14, 14, torch.Generator().manual_seed(0), alpha, sigma)
    noise = torch.rand(2 * m, 1, 14, 14, generator=torch.Generator().manual_seed(0)) * 2 - 1
    size = len(gaussian_kernel(sigma))
    assert size == int(8 * sigma + 1) | 1 == 17  # v2.ElasticTransform's kernel size
    # v2 scales the blurred noise by its alpha / size: its alpha is twice ours (ours is in pixels).
    blurred = TF.gaussian_blur(noise, [size, size], [sigma, sigma]) * 2 * alpha / 14
    torch.testing.assert_close(
        field, torch.stack((blurred[:m, 0], blurred[m:, 0]), -1), atol=1e-6, rtol=1e-5
    )
    x = torch.rand(m, 1, 14, 14) * 255
    identity = torch.nn.functional.affine_grid(
        torch.eye(2, 3).expand(m, 2, 3), [m, 1, 14, 14], align_corners=False
    )
    ours = resample(x, identity + field)
    theirs = torch.stack([TF.elastic(xi, field[i : i + 1]) for i, xi in enumerate(x)])
    torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-5)
    # The distortion relative to the digit is Simard's (alpha 34, sigma 4 on 28x28): half the
    # pixels.
    big = elastic_displacement(400, 28, 28, torch.Generator().manual_seed(1), 34.0, 4.0) * 14
    small = elastic_displacement(400, 14, 14, torch.Generator().manual_seed(1)) * 7
    rms_big, rms_small = (
        big.pow(2).sum(-1).mean().sqrt(),
        small.pow(2).sum(-1).mean().sqrt(),
    )  # pixels
    assert 0.9 < rms_small < 1.5 and abs(rms_big / rms_small - 2) < 0.3


def test_elastic_keeps_labels_and_digits_apart():
    """Per digit: each output channel depends on its own input channel only, no mirroring (ink stays
    on its side), classes untouched without swap, targets recomputed from the classes with it."""
    n = 300
    x = torch.zeros(n, 2, 14, 14)
    x[:, 0, 3:11, 2:5] = 255  # digit a: a bar on the left
    x[:, 1, 2:5, 3:11] = 255  # digit b: a bar at the top
    classes = torch.randint(0, 10, (n, 2), generator=torch.Generator().manual_seed(2))
    target = (classes[:, 0] <= classes[:, 1]).long()
    out, t, c = augment("elastic", x, target, classes, torch.Generator().manual_seed(3), swap=False)
    assert torch.equal(c, classes) and torch.equal(t, target) and torch.isfinite(out).all()
    assert not torch.equal(
        out, augment("safe", x, target, classes, torch.Generator().manual_seed(3), swap=False)[0]
    )
    cols, rows = torch.arange(14.0), torch.arange(14.0)[:, None]
    col_a = (out[:, 0] * cols).sum((1, 2)) / out[:, 0].sum((1, 2))
    row_b = (out[:, 1] * rows).sum((1, 2)) / out[:, 1].sum((1, 2))
    assert (col_a < 6).all() and (row_b < 6).all()  # left bar stays left, top bar stays on top
    only_a = x.clone()
    only_a[:, 1] = 0
    out_a = augment(
        "elastic", only_a, target, classes, torch.Generator().manual_seed(3), swap=False
    )[0]
    assert torch.equal(out_a[:, 0], out[:, 0]) and (out_a[:, 1] == 0).all()
    xs, ts, cs = augment("elastic", x, target, classes, torch.Generator().manual_seed(3), swap=True)
    assert torch.equal(ts, (cs[:, 0] <= cs[:, 1]).long()) and not torch.equal(cs, classes)


def test_affine_with_shear_is_torchvision_affine():
    """Rotation, scale and shear (no stretch, no shift): torchvision's affine, with its angle and
    shear measured the other way round."""
    import math

    from torchvision.transforms import InterpolationMode

    from digitpair.core.augment import affine_theta, resample

    x = torch.rand(4, 1, 14, 14) * 255
    for degrees, scale, shear in (
        (12.0, 1.1, 15.0),
        (-7.0, 0.9, -20.0),
        (0.0, 1.0, 10.0),
        (15.0, 1.05, 0.0),
    ):
        one = lambda v: torch.full((4,), v)  # noqa: E731
        theta = affine_theta(
            one(math.radians(degrees)),
            one(scale),
            one(0.0),
            one(0.0),
            one(math.tan(math.radians(shear))),
            one(1.0),
        )
        ours = resample(
            x, torch.nn.functional.affine_grid(theta, [4, 1, 14, 14], align_corners=False)
        )
        theirs = TF.affine(
            x,
            angle=-degrees,
            translate=[0, 0],
            scale=scale,
            shear=[-shear, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        )
        torch.testing.assert_close(ours, theirs, atol=1e-2, rtol=0)


def test_stretch_changes_the_width_to_height_ratio():
    """ratio r: widths grow by r and heights shrink by r, so a square's width/height becomes
    r**2."""
    from digitpair.core.augment import affine_theta, resample

    x = torch.zeros(1, 1, 28, 28)
    x[..., 10:18, 10:18] = 255
    zero, one = torch.zeros(1), torch.ones(1)
    out = resample(
        x,
        torch.nn.functional.affine_grid(
            affine_theta(zero, one, zero, zero, zero, torch.full((1,), 1.2)),
            [1, 1, 28, 28],
            align_corners=False,
        ),
    )[0, 0]
    width, height = (out.sum(0) > 127).sum().item(), (out.sum(1) > 127).sum().item()
    assert abs(width / height - 1.44) < 0.25


def test_pen_width_is_grey_dilation_and_erosion():
    """Each digit blended by its drawn fraction toward scipy's 3x3 grey dilation (a thicker pen) or,
    by half as much, its erosion (a thinner one) over the pixels inside the image."""
    from scipy import ndimage

    from digitpair.core.augment import pen_width

    x = torch.rand(6, 1, 14, 14) * 255
    dilated = torch.stack(
        [
            torch.from_numpy(ndimage.grey_dilation(d[0].numpy(), size=3, mode="constant", cval=0))
            for d in x
        ]
    )[:, None]
    eroded = torch.stack(
        [torch.from_numpy(ndimage.grey_erosion(d[0].numpy(), size=3, mode="nearest")) for d in x]
    )[:, None]
    g = torch.Generator().manual_seed(0)
    t = (torch.rand(6, generator=torch.Generator().manual_seed(0)) * 2 - 1)[:, None, None, None]
    out = pen_width(x, g, 1.0)
    expected = torch.where(t > 0, x + t * (dilated - x), x + t / 2 * (x - eroded))
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "kind",
    [
        "thick",
        "slant",
        "style",
        "style_elastic",
        "style_wide",
        "style_erase",
        "style_bold",
        "style_blur",
        "style_warp",
    ],
)
def test_style_augmentations_keep_labels_and_digits_apart(kind):
    """Per digit, no mirroring: each output channel depends on its own input channel only, a bar on
    the left stays in the left half and one at the top in the top half, classes untouched without
    swap, targets recomputed from the classes with it; finite, within 0-255."""
    n = 300
    x = torch.zeros(n, 2, 14, 14)
    x[:, 0, 3:11, 2:5] = 255
    x[:, 1, 2:5, 3:11] = 255
    classes = torch.randint(0, 10, (n, 2), generator=torch.Generator().manual_seed(2))
    target = (classes[:, 0] <= classes[:, 1]).long()
    out, t, c = augment(kind, x, target, classes, torch.Generator().manual_seed(3), swap=False)
    assert torch.equal(c, classes) and torch.equal(t, target)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 255 + 1e-3
    cols, rows = (
        torch.arange(14.0),
        torch.arange(14.0)[:, None],
    )  # the centre is 6.5; the bars start at 3
    assert ((out[:, 0] * cols).sum((1, 2)) / out[:, 0].sum((1, 2)) < 6.5).all()
    assert ((out[:, 1] * rows).sum((1, 2)) / out[:, 1].sum((1, 2)) < 6.5).all()
    only_a = x.clone()
    only_a[:, 1] = 0
    out_a = augment(kind, only_a, target, classes, torch.Generator().manual_seed(3), swap=False)[0]
    assert torch.allclose(out_a[:, 0], out[:, 0]) and (out_a[:, 1] == 0).all()
    _, ts, cs = augment(kind, x, target, classes, torch.Generator().manual_seed(3), swap=True)
    assert torch.equal(ts, (cs[:, 0] <= cs[:, 1]).long()) and not torch.equal(cs, classes)


def test_safe_and_elastic_draw_as_the_records_were_trained():
    """The style ranges extend the per-digit family without changing what `safe` and `elastic` draw:
    the same generator gives the same images as the plain rotation-scale-shift grid."""
    from digitpair.core.augment import (
        ELASTIC_ALPHA,
        elastic_displacement,
        random_affine_grid,
        resample,
    )

    x = torch.rand(8, 2, 14, 14) * 255
    c = torch.randint(0, 10, (8, 2))
    g = torch.Generator().manual_seed(5)
    digits = x.reshape(16, 1, 14, 14)
    grid = random_affine_grid(digits, g)
    grid = grid + elastic_displacement(16, 14, 14, g, ELASTIC_ALPHA)
    expected = resample(digits, grid).reshape(x.shape)
    out = augment("elastic", x, c[:, 0], c, torch.Generator().manual_seed(5), swap=False)[0]
    assert torch.equal(out, expected)


def test_random_erase_pastes_one_rectangle_of_paper_as_torchvision_erase():
    """Each erased image differs from its input by one rectangle set to 0, exactly what
    torchvision's `erase` does with that box; about half the images are erased, none by more than
    the largest share (+ rounding of the sides)."""
    from torchvision.transforms.v2 import functional as TF

    from digitpair.core.augment import ERASE, random_erase

    x = torch.full((400, 1, 14, 14), 255.0)
    out = random_erase(x, torch.Generator().manual_seed(0), ERASE)
    erased = 0
    for before, after in zip(x, out):
        hole = (after[0] == 0).nonzero()
        if len(hole) == 0:
            assert torch.equal(before, after)
            continue
        erased += 1
        (top, left), (bottom, right) = hole.min(0).values.tolist(), hole.max(0).values.tolist()
        high, wide = bottom - top + 1, right - left + 1
        assert torch.equal(after, TF.erase(before, top, left, high, wide, torch.zeros(1)))
        assert high * wide / 196 <= ERASE + 0.05
    assert 150 < erased < 250


def test_soften_is_a_blend_toward_scipys_gaussian_blur_at_the_same_darkest_ink():
    """Each image blended by its drawn fraction toward scipy's Gaussian blur (std BLUR_SIGMA,
    mirrored edges, radius 4 std: torchvision's kernel), rescaled to the image's own maximum."""
    from scipy import ndimage

    from digitpair.core.augment import BLUR_SIGMA, soften

    x = torch.rand(6, 1, 14, 14) * 255
    blurred = torch.stack(
        [
            torch.from_numpy(
                ndimage.gaussian_filter(
                    d[0].double().numpy(), BLUR_SIGMA, mode="mirror", truncate=4.0
                )
            )
            for d in x
        ]
    )[:, None].float()
    t = (torch.rand(6, generator=torch.Generator().manual_seed(0)))[:, None, None, None]
    mixed = x + t * (blurred - x)
    expected = mixed * x.amax((2, 3), keepdim=True) / mixed.amax((2, 3), keepdim=True)
    out = soften(x, torch.Generator().manual_seed(0), 1.0)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(out.amax((2, 3)), x.amax((2, 3)))


def test_proportion_warp_moves_the_middle_and_keeps_the_edges():
    """With the warp alone, a horizontal bar through the middle row moves by b (1 - 0) grid units,
    the same each way at most `amount`; the offsets vanish towards the box's edges."""
    from digitpair.core.augment import proportion_warp

    off = proportion_warp(200, 14, 14, torch.Generator().manual_seed(0), 0.25)
    assert off.shape == (200, 14, 14, 2)
    assert off.abs().max() <= 0.25 and off.abs().max() > 0.2
    assert (off[:, :, [0, -1], 0].abs() < 0.25 * 0.14).all() and (
        off[:, [0, -1], :, 1].abs() < 0.25 * 0.14
    ).all()
    assert torch.equal(
        off[:, :, :, 0], off[:, :1, :, 0].expand(-1, 14, -1)
    )  # x moves by column only
