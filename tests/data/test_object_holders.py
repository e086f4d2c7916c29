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


def test_boundary_pixels_by_hand():
    boundary = runpy.run_path(str(SCRIPT))["boundary"]
    # a 3x3 object (1) with a 1-pixel object (2) touching its right side, on the background
    segmentation = torch.tensor(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 2, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    expected = segmentation > 0
    expected[2, 2] = False  # the one pixel of object 1 whose 4 neighbours are all object 1
    assert torch.equal(boundary(segmentation), expected)
    # the frame's edge is no neighbour: a frame of one object has no boundary; batches keep their shape
    assert not boundary(torch.ones(2, 3, 4, dtype=torch.int64)).any()


def test_boundary_pixels_are_placed_in_their_objects_slot_the_backgrounds_or_another():
    boundary_places = runpy.run_path(str(SCRIPT))["boundary_places"]
    # one row: object 1 on pixels 2-4, object 2 on pixels 6-7, background elsewhere; boundary
    # pixels 2, 4, 6 and 7 (pixel 3's neighbours are both object 1)
    segmentation = torch.tensor([[0, 0, 1, 1, 1, 0, 2, 2, 0]])
    # object 1 is held by slot 1, its left edge lies in the background's slot 0; object 2's
    # pixels tie between slots 2 and 3, so slot 2 (the first) holds it and pixel 7 is in another
    held_by = torch.tensor([[0, 0, 0, 1, 1, 0, 2, 3, 0]])
    assert boundary_places(held_by, segmentation, 4) == (2, 1, 1)


def test_the_backgrounds_pixels_in_the_slots_that_hold_objects():
    floor_in_holders = runpy.run_path(str(SCRIPT))["floor_in_holders"]
    segmentation = torch.tensor([[0, 0, 1, 1, 0, 0, 2, 0, 0, 3]])
    # slot 1 holds object 1 with one floor pixel on each side; slot 2 holds object 2 alone; slot 0,
    # the background's, holds the rest of the floor and object 3, and its pixels do not count
    held_by = torch.tensor([[0, 1, 1, 1, 1, 0, 2, 0, 0, 0]])
    assert floor_in_holders(held_by, segmentation, 3) == (2, 5)
