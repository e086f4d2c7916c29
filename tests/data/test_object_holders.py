"""scripts/object_holders.py: merged, spread and missed objects, counted on a hand-built frame."""

import runpy
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[2] / "scripts" / "object_holders.py"


def test_merged_spread_and_missed_objects_are_counted():
    holders = runpy.run_path(str(SCRIPT))["holders"]
    # one row of 8 pixels: background 0, objects 1, 2 (one colour, say) and 3
    segmentation = torch.tensor([[0, 0, 0, 1, 1, 2, 3, 3]])
    # slot 0 holds the background and half of object 3; slot 1 both objects 1 and 2; slot 2 the rest of 3
    held_by = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 2]])
    objects, merged, share, floor = holders(held_by, segmentation, 3)
    assert (objects, merged) == (3, 1)  # object 2 shares object 1's slot
    assert share == pytest.approx(1 + 1 + 0.5)  # object 3 is split half and half
    assert floor == 1  # ties go to the first slot: object 3's is slot 0, the background's
    # every object in a slot of its own: nothing merged, nothing missed
    objects, merged, share, floor = holders(torch.tensor([[0, 0, 0, 1, 1, 2, 3, 3]]), segmentation, 4)
    assert (objects, merged, share, floor) == (3, 0, 3.0, 0)
