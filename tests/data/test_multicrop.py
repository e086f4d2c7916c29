"""DINO's multi-crop on tensors: shapes, ranges, reproducibility, the crop scale seen in the pixels
of an image whose content says where each pixel came from, and each photometric op against an
independent computation (colorsys for hue, a dense float64 convolution for the blur)."""

from __future__ import annotations

import colorsys
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.data.multicrop import (
    SMALL_IMAGES,
    MultiCrop,
    MultiCropConfig,
    _shift_hue,
    collate_crops,
    colour_jitter,
    gaussian_blur,
    sample_box,
)
from attnlab.errors import ConfigError, InputError

PLAIN = dict(flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=(0.0, 0.0, 0.0), solarize_p=(0.0, 0.0, 0.0))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_order_and_range_for_grey_and_colour_images():
    crops = MultiCrop(SMALL_IMAGES)(torch.rand(1, 28, 28), gen(0))
    assert [tuple(c.shape) for c in crops] == [(1, 28, 28)] * 2 + [(1, 12, 12)] * 6
    config = MultiCropConfig(global_size=32, local_size=16, local_crops=3)
    crops = MultiCrop(config)(torch.rand(3, 40, 56), gen(0))
    assert [tuple(c.shape) for c in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 3
    assert all(c.min() >= 0 and c.max() <= 1 for c in crops)


def test_same_generator_same_crops_another_seed_other_crops():
    image = torch.rand(3, 48, 48)
    augment = MultiCrop(MultiCropConfig(global_size=24, local_size=12, local_crops=4))
    first, again, other = augment(image, gen(5)), augment(image, gen(5)), augment(image, gen(6))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_normalisation_is_applied_last():
    image = torch.rand(3, 40, 40)
    base = MultiCropConfig(global_size=20, local_size=10, local_crops=2)
    normed = dataclasses.replace(base, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    plain, out = MultiCrop(base)(image, gen(1)), MultiCrop(normed)(image, gen(1))
    mean, std = torch.tensor(normed.mean).view(3, 1, 1), torch.tensor(normed.std).view(3, 1, 1)
    for a, b in zip(plain, out, strict=True):
        torch.testing.assert_close(b, (a - mean) / std)


@pytest.mark.parametrize("scale", [(0.05, 0.4), (0.4, 1.0), (0.1, 0.12)])
def test_sampled_boxes_keep_the_area_and_aspect_ratio_ranges(scale):
    g, areas = gen(2), []
    for _ in range(300):
        top, left, h, w = sample_box(100, 100, scale, (3 / 4, 4 / 3), g)
        assert top >= 0 and top + h <= 100 and left >= 0 and left + w <= 100
        areas.append(h * w / 100**2)
        # each side is rounded to a pixel (at most 0.5 off) from a box of ratio in [3/4, 4/3]
        assert (w - 0.5) / (h + 0.5) <= 4 / 3 and (w + 0.5) / (h - 0.5) >= 3 / 4
    assert scale[0] - 0.02 <= min(areas) and max(areas) <= scale[1] + 0.02
    # the whole range is used, not a corner of it
    assert min(areas) < scale[0] + 0.2 * (scale[1] - scale[0]) and max(areas) > scale[1] - 0.2 * (
        scale[1] - scale[0]
    )


def test_a_crop_that_cannot_fit_falls_back_to_the_centre():
    # ratio 3..4 on a square image: no try fits at scale 1, so the widest centred crop of ratio 3
    assert sample_box(60, 60, (1.0, 1.0), (3.0, 4.0), gen(0)) == (20, 0, 20, 60)


def coordinates(height: int, width: int) -> torch.Tensor:
    """R: the column's centre / width, G: the row's centre / height: every pixel says where it is."""
    cols = ((torch.arange(width) + 0.5) / width).expand(height, width)
    rows = ((torch.arange(height) + 0.5) / height)[:, None].expand(height, width)
    return torch.stack([cols, rows, torch.zeros(height, width)])


def seen_area(view: torch.Tensor) -> float:
    """Fraction of the image a view covers, from the slope of the coordinates inside it."""
    size = view.shape[-1]
    inner = slice(3, size - 3)  # away from the edges, where resampling clamps the ramp
    dx = view[0, :, 1:].sub(view[0, :, :-1])[inner, inner].median()
    dy = view[1, 1:, :].sub(view[1, :-1, :])[inner, inner].median()
    return float(dx * size * dy * size)


def test_the_pixels_of_each_crop_cover_an_area_within_its_scale_range():
    config = MultiCropConfig(global_size=32, local_size=16, local_crops=6, **PLAIN)
    augment, image, g = MultiCrop(config), coordinates(64, 64), gen(3)
    global_areas, local_areas = [], []
    for _ in range(15):
        crops = augment(image, g)
        global_areas += [seen_area(v) for v in crops[:2]]
        local_areas += [seen_area(v) for v in crops[2:]]
    # the resampled ramps give the area back within a few per cent
    assert min(global_areas) >= 0.4 * 0.95 and max(global_areas) <= 1.0 * 1.02
    assert min(local_areas) >= 0.05 * 0.9 and max(local_areas) <= 0.4 * 1.05
    assert max(local_areas) < min(global_areas) + 0.1


def test_with_everything_off_a_full_crop_is_the_image_and_solarise_and_flip_do_what_they_say():
    image = torch.rand(1, 16, 16)
    full = dict(global_size=16, global_scale=(1.0, 1.0), ratio=(1.0, 1.0), local_crops=0)
    same = MultiCrop(MultiCropConfig(**full, **PLAIN))(image, gen(0))
    torch.testing.assert_close(same[0], image, atol=1e-6, rtol=0)
    solar = {**PLAIN, "solarize_p": (1.0, 1.0, 1.0), "flip_p": 1.0}
    out = MultiCrop(MultiCropConfig(**full, **solar))(image, gen(0))
    expected = torch.where(image >= 128 / 255, 1 - image, image).flip(-1)
    torch.testing.assert_close(out[1], expected, atol=1e-6, rtol=0)


def test_grey_images_ignore_saturation_hue_and_grayscale():
    image = torch.rand(1, 12, 12)
    config = MultiCropConfig(brightness=0.0, contrast=0.0, saturation=0.2, hue=0.1)
    assert torch.equal(colour_jitter(image, config, gen(0)), image)
    rgb = MultiCrop(MultiCropConfig(global_size=12, local_crops=0, **{**PLAIN, "grayscale_p": 1.0}))
    view = rgb(torch.rand(3, 12, 12), gen(0))[0]
    assert torch.equal(view[0], view[1]) and torch.equal(view[1], view[2])


def test_brightness_scales_every_pixel_by_one_factor_in_range():
    image = torch.rand(3, 10, 10) * 0.5 + 0.2  # no pixel near 0, where a ratio amplifies rounding
    config = MultiCropConfig(brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0)
    factors = []
    for seed in range(20):
        ratio = colour_jitter(image, config, gen(seed)) / image
        assert float(ratio.max() - ratio.min()) < 1e-5
        factors.append(float(ratio.mean()))
    assert 0.6 <= min(factors) < 0.9 and 1.1 < max(factors) <= 1.4


def test_hue_shift_equals_colorsys():
    image = torch.rand(3, 5, 7, dtype=torch.float64)
    shift = 0.13
    ours = _shift_hue(image, shift)
    for y in range(5):
        for x in range(7):
            h, s, v = colorsys.rgb_to_hsv(*image[:, y, x].tolist())
            expected = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
            assert ours[:, y, x].tolist() == pytest.approx(expected, abs=1e-12)


def test_blur_equals_a_dense_float64_gaussian_with_replicated_edges():
    image = torch.rand(2, 9, 11)
    sigma = 1.3
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel2d = torch.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    kernel2d /= kernel2d.sum()
    padded = F.pad(image.double()[None], (radius,) * 4, mode="replicate")[0]
    expected = torch.stack(
        [
            torch.stack(
                [
                    torch.stack(
                        [
                            (padded[c, i : i + 2 * radius + 1, j : j + 2 * radius + 1] * kernel2d).sum()
                            for j in range(11)
                        ]
                    )
                    for i in range(9)
                ]
            )
            for c in range(2)
        ]
    )
    torch.testing.assert_close(gaussian_blur(image, sigma).double(), expected, atol=1e-6, rtol=0)
    flat = torch.full((1, 6, 6), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)


def test_collate_stacks_each_crop_over_the_batch():
    augment = MultiCrop(MultiCropConfig(global_size=8, local_size=4, local_crops=2))
    samples = [augment(torch.rand(1, 16, 16), gen(i)) for i in range(3)]
    batch = collate_crops(samples)
    assert [tuple(b.shape) for b in batch] == [(3, 1, 8, 8)] * 2 + [(3, 1, 4, 4)] * 2
    assert torch.equal(batch[2][1], samples[1][2])
    with pytest.raises(InputError, match="same number of crops"):
        collate_crops([samples[0], samples[1][:3]])


def test_bad_images_and_configs_are_one_line_errors():
    augment = MultiCrop(SMALL_IMAGES)
    with pytest.raises(InputError, match="C = 1 or 3"):
        augment(torch.rand(2, 28, 28), gen(0))
    with pytest.raises(InputError, match="float"):
        augment(torch.zeros(1, 28, 28, dtype=torch.uint8), gen(0))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        augment(torch.rand(1, 28, 28) * 255, gen(0))
    with pytest.raises(ConfigError, match="local_scale"):
        MultiCrop(MultiCropConfig(local_scale=(0.5, 0.2)))
    with pytest.raises(ConfigError, match="probabilities"):
        MultiCrop(MultiCropConfig(blur_p=(1.0, 1.5, 0.5)))
    with pytest.raises(ConfigError, match="mean and std"):
        MultiCrop(MultiCropConfig(mean=(0.5,)))
