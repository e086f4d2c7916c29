"""The SECOND residual coding: hand values, exact round trip, direction bins; anchors on the grid."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.pointpillars.anchors import AnchorConfig, make_anchors
from attnlab.models.pointpillars.box_coder import (
    apply_direction,
    decode,
    direction_target,
    encode,
    limit_period,
)


def test_encode_by_hand():
    anchor = torch.tensor([10.0, 2.0, -1.75, 1.6, 3.9, 1.5, 0.0], dtype=torch.float64)
    box = torch.tensor([11.0, 1.0, -1.7, 1.8, 4.2, 1.6, 0.3], dtype=torch.float64)
    d = math.sqrt(1.6**2 + 3.9**2)
    expected = [1 / d, -1 / d, ((-1.7 + 0.8) - (-1.75 + 0.75)) / 1.5, math.log(1.8 / 1.6),
                math.log(4.2 / 3.9), math.log(1.6 / 1.5), 0.3]  # fmt: skip
    assert encode(box, anchor).tolist() == pytest.approx(expected, abs=1e-12)


def test_round_trip_float64():
    gen = torch.Generator().manual_seed(0)
    anchors = torch.cat([torch.randn(100, 3, generator=gen) * 10, 0.5 + torch.rand(100, 3, generator=gen) * 4,
                         torch.rand(100, 1, generator=gen) * 3], 1).double()  # fmt: skip
    boxes = anchors + torch.randn(100, 7, generator=gen).double() * 0.3
    boxes[:, 3:6] = boxes[:, 3:6].abs() + 0.1
    torch.testing.assert_close(decode(encode(boxes, anchors), anchors), boxes, rtol=0, atol=1e-12)


def test_direction_bin_recovers_the_heading_modulo_two_pi():
    headings = torch.linspace(-7.0, 7.0, 141, dtype=torch.float64)
    wrong_half = headings + math.pi * (
        torch.arange(141, dtype=torch.float64) % 3
    )  # what the regression may give: +- k pi
    recovered = apply_direction(wrong_half, direction_target(headings))
    torch.testing.assert_close(recovered, limit_period(headings, 0.0, 2 * math.pi), rtol=0, atol=1e-9)
    assert direction_target(torch.tensor([0.1, 3.0, 3.3, -0.1])).tolist() == [0, 0, 1, 1]


def test_anchors_sit_at_cell_centres_with_the_papers_sizes():
    cfg = AnchorConfig()
    anchors, classes = make_anchors(cfg, (4, 5), (0.0, -4.0, -3.0, 10.0, 4.0, 1.0))
    assert anchors.shape == (4 * 5 * 3 * 2, 7) and classes.shape == (120,)
    grid = anchors.reshape(4, 5, 3, 2, 7)
    assert grid[0, 0, 0, 0].tolist() == pytest.approx([1.0, -3.0, -1.75, 1.6, 3.9, 1.5, 0.0])
    assert grid[3, 4, 1, 1].tolist() == pytest.approx(
        [9.0, 3.0, -0.6 - 1.73 / 2, 0.6, 0.8, 1.73, math.pi / 2]
    )
    assert classes.reshape(4, 5, 3, 2)[2, 1, :, 0].tolist() == [0, 1, 2]
    with pytest.raises(InputError, match="one size and one z centre per class"):
        AnchorConfig(z_centres=(-1.0,))
