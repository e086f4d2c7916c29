"""scripts/slot_probe.py: where the foreground pixels go, counted by hand on a tiny frame."""

import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "scripts" / "slot_probe.py"


def test_pixel_shares_on_a_hand_made_frame():
    pixel_shares = runpy.run_path(str(SCRIPT))["pixel_shares"]
    seg = torch.zeros(1, 4, 4, dtype=torch.long)
    seg[0, 0, :4] = 1  # object 1: the top row, 4 pixels
    seg[0, 3, 0:2] = 2  # object 2: 2 pixels
    winner = torch.zeros(1, 4, 4, dtype=torch.long)  # slot 0 wins the background ...
    winner[0, 0, :3] = 1  # ... and one pixel of object 1, whose other three go to slot 1
    winner[0, 3, 0:2] = 2  # object 2 wholly in slot 2
    masks = torch.nn.functional.one_hot(winner, 3).permute(0, 3, 1, 2).float()  # (1, 3, 4, 4)
    on_bg, majority = pixel_shares(masks, seg)
    assert on_bg == pytest.approx(1 / 6)  # 1 of the 6 foreground pixels
    assert majority == pytest.approx((3 / 4 + 1) / 2)
