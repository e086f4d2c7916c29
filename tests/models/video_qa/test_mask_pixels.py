"""What a soft mask shows of its frame (:mod:`attnlab.models.video_qa.mask_pixels`): by hand on a
built frame, against a float64 loop, finite gradients on a flat frame, and the errors."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.video_qa.mask_pixels import COLOUR_DIM, PIXEL_DIM, _sqrt_or_zero, mask_colour, mask_pixels


def test_a_red_bar_on_grey_gives_its_colour_and_extent_by_hand():
    video = torch.full((3, 8, 8), 0.5)
    video[:, 2:6, 3] = torch.tensor([0.8, 0.1, 0.1])[:, None]  # a vertical bar: rows 2-5 of column 3
    video[:, 2, 3] = torch.tensor([0.4, 0.05, 0.05])  # its top pixel half as bright
    bar = torch.zeros(8, 8)
    bar[2:6, 3] = 1.0
    masks = torch.stack([bar, 1 - bar])[None, None]  # (1, 1, 2, 8, 8)
    out = mask_pixels(video[None, None], masks)[0, 0]  # (2, 8)
    assert out.shape == (2, PIXEL_DIM)
    # three pixels a and one b = a / 2: mean a - (a - b) / 4, spread sqrt(3) / 4 |a - b|
    a = torch.tensor([0.8, 0.1, 0.1])
    torch.testing.assert_close(out[0, :3], a - a / 8)
    torch.testing.assert_close(out[0, 3:6], 3**0.5 / 4 * a / 2)
    # rows 2..5 have centres 2.5/8..5.5/8: spread sqrt(1.25) / 8; one column: no spread in x
    torch.testing.assert_close(out[0, 6:], torch.tensor([1.25**0.5 / 8, 0.0]))
    torch.testing.assert_close(out[1, :6], torch.tensor([0.5, 0.5, 0.5, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(mask_colour(video[None, None], masks)[0, 0], out[:, :COLOUR_DIM])


def test_soft_masks_equal_a_float64_loop():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 3, 5, 6)
    masks = torch.rand(2, 3, 4, 1, 5, 6).softmax(dim=2)  # as the encoders decode them
    out = mask_pixels(video, masks).double()
    ys, xs = torch.meshgrid((torch.arange(5.0) + 0.5) / 5, (torch.arange(6.0) + 0.5) / 6, indexing="ij")
    where = [c.double().expand(2, 3, 1, 5, 6) for c in (ys, xs)]
    values = torch.cat([video.double(), *where], dim=2)  # (B, T, 5, H, W): rgb, y, x
    for b in range(2):
        for t in range(3):
            for k in range(4):
                m = masks[b, t, k, 0].double()
                mean = (values[b, t] * m).sum((1, 2)) / m.sum()  # (5,)
                std = (((values[b, t] - mean[:, None, None]) ** 2 * m).sum((1, 2)) / m.sum()).sqrt()
                torch.testing.assert_close(out[b, t, k], torch.cat([mean[:3], std]), atol=1e-5, rtol=1e-5)


def test_an_empty_mask_gives_zeros_and_bad_shapes_one_line():
    video = torch.rand(1, 1, 3, 4, 4)
    masks = torch.zeros(1, 1, 2, 4, 4)
    masks[:, :, 1] = 1
    assert torch.equal(mask_pixels(video, masks)[0, 0, 0], torch.zeros(PIXEL_DIM))
    with pytest.raises(InputError, match="do not fit video"):
        mask_pixels(video, torch.zeros(1, 2, 2, 4, 4))
    with pytest.raises(InputError, match="video must be floating"):
        mask_pixels(video[:, :, :2], masks)
    with pytest.raises(InputError, match="masks must be floating"):
        mask_colour(video, masks.long())


def test_a_flat_frame_gives_zero_spread_and_finite_gradients():
    # aloe-slots trains the encoder through these features; a flat region's variance is 0 or rounds
    # below it, where sqrt's derivative is infinite: the gradient must stay finite (it was NaN)
    torch.manual_seed(0)
    video = torch.full((1, 2, 3, 4, 4), 0.3)
    logits = torch.randn(1, 2, 3, 4, 4, requires_grad=True)
    masks = logits.softmax(2)  # (1, 2, 3, 4, 4) soft masks over 3 slots
    out = mask_pixels(video, masks)
    # no colour spread: E[x^2] - E[x]^2 leaves float32 rounding, ~1e-8, whose square root is ~1e-4
    assert out[..., 3:6].abs().max() < 1e-3
    out.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0  # the extent still trains
    # where the variance is positive, the values and gradients are sqrt's own
    var = torch.tensor([0.25, 0.0, -1e-9], requires_grad=True)
    std = _sqrt_or_zero(var)
    std.sum().backward()
    assert std.tolist() == [0.5, 0.0, 0.0] and var.grad.tolist() == [1.0, 0.0, 0.0]
