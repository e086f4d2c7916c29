"""Which slots hold the objects of a finished object-centric run's test clips?

Over every frame of the test split, each object (each label of the ground-truth segmentation but the
background) is held by the slot with most of its pixels under the argmax of the masks. This prints
the share of objects whose slot also holds another object (merged: counted once per extra object),
the mean share of an object's pixels in its slot (the rest is spread over other slots), and the
share of objects held by the background's slot, the slot with most of the background's pixels
(missed). It tells an FG-ARI short of 1 by its cause (docs/video_reasoning.md, issue 16 part 3).

    python scripts/object_holders.py runs/motionfit4-s0 runs/colourfit1-compact1-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from attnlab.explorer.viewers import load_run


def holders(held_by: torch.Tensor, segmentation: torch.Tensor, num_slots: int) -> tuple[int, int, float, int]:
    """The slot of each pixel and the segmentation of one frame (H, W), 0 the background -> the
    number of objects, of objects in a slot an earlier object holds, the sum over objects of the
    share of their pixels in their slot, and the number held by the background's slot."""
    floor = torch.bincount(held_by[segmentation == 0], minlength=num_slots).argmax()
    owners, share = [], 0.0
    for label in segmentation.unique():
        if label == 0:
            continue
        counts = torch.bincount(held_by[segmentation == label], minlength=num_slots)
        owners.append(int(counts.argmax()))
        share += counts.max().item() / counts.sum().item()
    return len(owners), len(owners) - len(set(owners)), share, sum(o == floor for o in owners)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished object-centric run folders")
    for folder in parser.parse_args().runs:
        run = load_run(folder)
        total = [0, 0, 0.0, 0]
        for batch in run.data.test_dataloader():
            with torch.no_grad():
                masks = run.task.model(batch["video"]).masks  # (B, T, K, 1, H, W)
            held_by = masks[:, :, :, 0].argmax(dim=2)  # (B, T, H, W)
            segmentation = batch["segmentation"][:, : masks.shape[1]]
            for frame, labels in zip(held_by.flatten(0, 1), segmentation.flatten(0, 1), strict=True):
                total = [a + b for a, b in zip(total, holders(frame, labels, masks.shape[2]), strict=True)]
        objects, merged, share, floor = total
        print(
            f"{folder}: {objects} objects; in another's slot {merged / objects:.3f}, share of their "
            f"pixels in their slot {share / objects:.3f}, held by the background's slot {floor / objects:.3f}"
        )


if __name__ == "__main__":
    main()
