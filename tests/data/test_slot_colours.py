"""scripts/slot_colours.py: who paints an object's colour, checked on a hand-built decomposition."""

import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "scripts" / "slot_colours.py"


def test_a_holding_slot_that_paints_the_wrong_colour_is_told_from_one_that_paints_it():
    errors = runpy.run_path(str(SCRIPT))["holder_and_best_errors"]
    target = torch.zeros(1, 1, 1, 1, 3)  # (B, T, C, H, W): one channel, three pixels
    target[..., 1] = 1.0  # pixel 1 is the object (colour 1), pixels 0 and 2 the floor (0)
    segmentation = torch.tensor([[[[0, 1, 0]]]])  # (B, T, H, W)
    masks = torch.tensor([[0.9, 0.2, 0.9], [0.1, 0.8, 0.1]]).view(1, 1, 2, 1, 1, 3)  # slot 1 holds it
    painted = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.4, 0.0]]).view(1, 1, 2, 1, 1, 3)
    held, best = errors(masks, painted, target, segmentation)
    assert held == pytest.approx(0.36)  # slot 1 paints 0.4 where the colour is 1
    assert best == pytest.approx(0.0)  # slot 0 paints it, at mask 0.2
    held, best = errors(masks, painted.flip(2), target, segmentation)  # the holder paints it now
    assert held == pytest.approx(0.0) and best == pytest.approx(0.0)
