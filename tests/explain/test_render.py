import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.render import to_display, upsample_maps


def test_to_display_scales_each_image_and_makes_rgb():
    images = torch.stack([torch.full((1, 4, 4), 5.0), torch.arange(16.0).view(1, 4, 4)])
    shown = to_display(images)
    assert shown.shape == (2, 4, 4, 3)
    assert shown[1].min() == 0 and shown[1].max() == 1
    assert torch.equal(shown[1][..., 0], shown[1][..., 2])  # grey replicated to RGB
    assert torch.all(shown[0] == 0)  # a constant image does not divide by zero


def test_upsample_keeps_constant_maps_and_accepts_both_layouts():
    maps = torch.full((2, 1, 3, 3), 0.25)
    up = upsample_maps(maps, (12, 12))
    assert up.shape == (2, 12, 12)
    torch.testing.assert_close(up, torch.full((2, 12, 12), 0.25))
    assert upsample_maps(maps[:, 0], (6, 6)).shape == (2, 6, 6)
    with pytest.raises(InputError):
        upsample_maps(torch.ones(2, 2, 3, 3), (6, 6))
