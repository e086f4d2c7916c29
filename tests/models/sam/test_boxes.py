"""Box utilities: a mask's box, the jitter rule of seed 004 and its training schedule, by hand; the
resize/crop maths of pre- and post-processing on a non-square image."""

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.models.sam.boxes import (
    box_area,
    check_jitter_schedule,
    jitter_boxes,
    masks_to_boxes,
    sample_train_fractions,
)
from attnlab.models.sam.transforms import postprocess_masks, resized_shape, scale_boxes


def test_masks_to_boxes_uses_pixel_edges():
    masks = torch.zeros(3, 5, 6, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4, 0] = True
    expected = torch.tensor([[2.0, 1, 5, 3], [0, 4, 1, 5], [0, 0, 0, 0]])  # the empty mask: zeros
    assert torch.equal(masks_to_boxes(masks), expected)
    assert box_area(expected).tolist() == [6.0, 1.0, 0.0]


def test_every_side_moves_by_exactly_the_fraction_of_its_extent():
    boxes = torch.tensor([[40.0, 50, 60, 90]] * 400)  # width 20, height 40
    moved = jitter_boxes(boxes, 0.2, (200, 200), torch.Generator().manual_seed(0))
    shift = (moved - boxes).abs()
    assert torch.allclose(shift, torch.tensor([4.0, 8, 4, 8]).expand_as(shift))
    signs = torch.sign(moved - boxes)
    for side in range(4):  # each side independently in or out, about half the time
        assert 0.4 < (signs[:, side] > 0).float().mean() < 0.6
    assert 0.15 < ((signs[:, 0] > 0) & (signs[:, 2] > 0)).float().mean() < 0.35
    assert torch.equal(jitter_boxes(boxes, 0.0, (200, 200), torch.Generator()), boxes)


def test_jitter_is_clipped_to_the_image_and_fractions_are_checked():
    boxes = torch.tensor([[0.0, 0, 10, 10]] * 50)
    moved = jitter_boxes(boxes, 0.4, (10, 10), torch.Generator().manual_seed(1))
    assert (moved >= 0).all() and (moved <= 10).all() and (box_area(moved) > 0).all()
    with pytest.raises(InputError, match=r"jitter fractions must lie in \[0, 0.5\)"):
        jitter_boxes(boxes, 0.5, (10, 10), torch.Generator())


def test_training_schedule_frequencies():
    f = sample_train_fractions(20_000, torch.Generator().manual_seed(0))
    for value, prob in ((0.0, 0.6), (0.1, 0.2), (0.2, 0.2)):
        assert abs((f == value).float().mean().item() - prob) < 0.015
    assert torch.equal(f.unique(), torch.tensor([0.0, 0.1, 0.2]))


def test_non_square_resize_and_crop_back_by_hand():
    assert resized_shape(300, 200, 1024) == (1024, 683)  # 200 * 1024 / 300 = 682.67 -> 683
    assert resized_shape(96, 128, 128) == (96, 128)
    boxes = torch.tensor([[20.0, 30, 100, 150]])
    torch.testing.assert_close(
        scale_boxes(boxes, (300, 200), 1024), boxes * torch.tensor([683 / 200, 1024 / 300] * 2)
    )
    # a low-res map that is constant per row: upsampling keeps rows, cropping keeps the top 96 of 128
    low = torch.arange(32.0).view(1, 1, 32, 1).expand(1, 1, 32, 32)
    full = postprocess_masks(low, (96, 128), (96, 128), 128)
    assert full.shape == (1, 1, 96, 128)
    rows = torch.nn.functional.interpolate(low, (128, 128), mode="bilinear", align_corners=False)[
        0, 0, :96, 0
    ]
    torch.testing.assert_close(full[0, 0, :, 5], rows)


def test_a_custom_schedule_and_its_one_line_errors():
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(sample_train_fractions(50, gen, [(0.0, 1.0)]), torch.zeros(50))  # exact boxes
    f = sample_train_fractions(10_000, gen, [(0.1, 0.25), (0.3, 0.75)])
    assert (
        torch.equal(f.unique(), torch.tensor([0.1, 0.3]))
        and abs((f == 0.3).float().mean().item() - 0.75) < 0.02
    )
    for bad, message in [
        ([], r"must be \[\[fraction, probability\]"),
        ([(0.5, 1.0)], r"fractions must lie in \[0, 0.5\)"),
        ([(0.1, 0.5), (0.2, 0.4)], "probabilities must sum to 1, got 0.9"),
        ([(0.1, 0.0), (0.2, 1.0)], "probabilities be > 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_jitter_schedule(bad, "task.train_jitter")
