"""scripts/conditioned_slots.py: the first frame's cues counted by hand, and the cued slots used."""

import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "scripts" / "conditioned_slots.py"


def test_first_frame_cues_on_hand_made_masks():
    cues = runpy.run_path(str(SCRIPT))["first_frame_cues"]
    masks = torch.zeros(1, 2, 3, 4, 4, dtype=torch.bool)  # (B, T, 1 + K=2, S, S)
    masks[0, 0, 1, 0, 0:2] = True  # object 1 in frame 1: pixels (row 0, cols 0-1)
    masks[0, 0, 0] = ~masks[0, 0, 1]  # the ground: the rest
    masks[0, 1, 2, 3, 3] = True  # object 2 appears in frame 2 only: not in view at the start
    found = cues(masks)[0]  # (1 + K, 4)
    # pixel centres are (i + 0.5) / 4; object 1: row 0, columns 0 and 1
    assert found[1].tolist() == pytest.approx([0.125, 0.25, 1.0, 0.0])
    assert found[2].tolist() == [0.0, 0.0, 0.0, 0.0]
    # the ground: 14 pixels, the whole frame's sums less object 1's
    ground_y = (4 * (0.125 + 0.375 + 0.625 + 0.875) - 2 * 0.125) / 14
    ground_x = (4 * (0.125 + 0.375 + 0.625 + 0.875) - 0.125 - 0.375) / 14
    assert found[0].tolist() == pytest.approx([ground_y, ground_x, 1.0, 1.0])


def test_cued_slots_start_from_the_cues(one_thread):
    script = runpy.run_path(str(SCRIPT))
    slots = script["CuedSlots"](8, 3)
    with pytest.raises(RuntimeError, match="set cues"):
        slots.initial_slots(2, torch.zeros(1))
    slots.cues = torch.rand(2, 3, 4)
    start = slots.initial_slots(2, torch.zeros(1))  # (B, K, D)
    assert torch.allclose(start, slots.queries + slots.cue_mlp(slots.cues))
    assert not torch.allclose(start[0], start[1])  # each clip its own cues
