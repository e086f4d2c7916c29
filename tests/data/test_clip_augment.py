"""V-JEPA's clip augmentation: one resized crop per clip for all its frames, then a flip; checked
against bilinear resampling of coordinate ramps computed by hand in float64."""

from __future__ import annotations

import pytest
import torch

from attnlab.data.clip_augment import ClipAugment, augment_clips
from attnlab.data.multicrop import sample_box
from attnlab.errors import ConfigError, InputError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramps(batch: int, frames: int, height: int, width: int) -> torch.Tensor:
    """(B, 2, T, H, W): channel 0 the column, channel 1 the row, each frame t shifted by 100 t."""
    cols = torch.arange(width, dtype=torch.float64).expand(height, width)
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    shift = 100.0 * torch.arange(frames, dtype=torch.float64)[:, None, None]
    clip = torch.stack([cols + shift, rows + shift])  # (2, T, H, W)
    return clip.expand(batch, -1, -1, -1, -1).clone()


def resampled(start: int, crop: int, size: int) -> torch.Tensor:
    """(size,) the coordinate a bilinear resize (align_corners=False) of pixels start..start+crop-1 of a
    ramp gives at each output pixel: linear resampling of a linear ramp is the source position itself,
    clamped to the crop's first and last pixel centres."""
    source = (torch.arange(size, dtype=torch.float64) + 0.5) * crop / size - 0.5
    return start + source.clamp(0, crop - 1)


def test_full_scale_square_crop_without_flip_is_the_identity():
    clips = torch.randn(3, 2, 4, 16, 16)
    out = augment_clips(clips, ClipAugment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0), gen(0))
    assert torch.equal(out, clips)


def test_each_clip_is_one_box_resized_in_every_frame_then_flipped_or_not():
    config = ClipAugment()
    B, T, H, W = 64, 3, 24, 20
    out = augment_clips(ramps(B, T, H, W), config, gen(4))
    replay, flips, areas = gen(4), 0, []
    for b in range(B):  # the same draws, in the documented order: the box, then the coin
        top, left, h, w = sample_box(H, W, config.scale, config.ratio, replay)
        flip = float(torch.rand(1, generator=replay)) < config.flip_p
        cols = resampled(left, w, W).flip(0) if flip else resampled(left, w, W)
        rows = resampled(top, h, H)
        for t in range(T):
            torch.testing.assert_close(out[b, 0, t], cols.expand(H, W) + 100 * t, rtol=0, atol=1e-9)
            torch.testing.assert_close(out[b, 1, t], rows[:, None].expand(H, W) + 100 * t, rtol=0, atol=1e-9)
        flips += flip
        areas.append(h * w / (H * W))
    assert 20 <= flips <= 44  # p = 0.5 over 64 clips: 4 standard deviations
    assert min(areas) < 0.45 and max(areas) > 0.85  # the boxes use the official (0.3, 1.0) range


def test_draws_depend_on_the_generator_only():
    clips = torch.randn(4, 1, 2, 16, 16)
    first, again = augment_clips(clips, ClipAugment(), gen(9)), augment_clips(clips, ClipAugment(), gen(9))
    assert torch.equal(first, again)
    assert not torch.equal(first, augment_clips(clips, ClipAugment(), gen(10)))


def test_bad_settings_and_inputs_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"task.augment.scale must be \[low, high\] with 0 < low"):
        ClipAugment(scale=(0.0, 1.0)).check("task.augment")
    with pytest.raises(ConfigError, match=r"task.augment.ratio must be"):
        ClipAugment(ratio=(1.5, 0.75)).check("task.augment")
    with pytest.raises(ConfigError, match=r"task.augment.flip_p must be in \[0, 1\], got 2"):
        ClipAugment(flip_p=2).check("task.augment")
    with pytest.raises(InputError, match=r"float \(B, C, T, H, W\) tensor, got \(2, 16, 16\)"):
        augment_clips(torch.zeros(2, 16, 16), ClipAugment(), gen(0))
