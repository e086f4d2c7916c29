"""Which slots hold the objects of a finished object-centric run's test clips, and where the
FG-ARI points are lost?

Over every frame of the test split, each object (each label of the ground-truth segmentation but the
background) is held by the slot with most of its pixels under the argmax of the masks. This prints
the share of objects whose slot also holds another object (merged: counted once per extra object),
the mean share of an object's pixels in its slot (the rest is spread over other slots), and the
share of objects held by the background's slot, the slot with most of the background's pixels
(missed). It tells an FG-ARI short of 1 by its cause (docs/video_reasoning.md, issue 16 part 3).

It also splits the object pixels into the boundary (a pixel with a 4-neighbour of another label: at
32x32 most of a CLEVRER-lite object's pixels, whose colour the area resize blends with the
neighbour's) and the interior, and prints the FG-ARI of the interior alone (boundary pixels scored
as background) and where the boundary pixels go: their object's slot, the background's, or another.
``--floor W ...`` prints the same for the k-means floors of these clips (each frame's chromaticity
and (y, x) times W, 7 clusters: scripts/vmds_references.py; W = 1 scores FG-ARI 0.690).

    python scripts/object_holders.py runs/motionfit4-s0 runs/colourfit1-compact1-s0 [--floor 0.25 0.5 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

from attnlab.explorer.viewers import load_run
from attnlab.metrics.mot import slot_mot_metrics
from attnlab.metrics.segmentation import fg_ari, hungarian_miou
from attnlab.models.object_centric.colour import chromaticity

sys.path.insert(0, str(Path(__file__).parent))  # the sibling script that defines the floor
from vmds_references import kmeans_masks

FLOOR_CLUSTERS = 7  # the recipe's slots


def owners(held_by: torch.Tensor, segmentation: torch.Tensor, num_slots: int) -> tuple[int, dict[int, int]]:
    """One frame (H, W) -> the background's slot (the one with most of its pixels) and, for each
    object label, the slot that holds it (the one with most of its pixels; ties to the first)."""

    def holder(label: int) -> int:
        return int(torch.bincount(held_by[segmentation == label], minlength=num_slots).argmax())

    labels = [int(label) for label in segmentation.unique() if label != 0]
    return holder(0), {label: holder(label) for label in labels}


def holders(held_by: torch.Tensor, segmentation: torch.Tensor, num_slots: int) -> tuple[int, int, float, int]:
    """The slot of each pixel and the segmentation of one frame (H, W), 0 the background -> the
    number of objects, of objects in a slot an earlier object holds, the sum over objects of the
    share of their pixels in their slot, and the number held by the background's slot."""
    floor, held = owners(held_by, segmentation, num_slots)
    share = sum(
        float((held_by[segmentation == label] == slot).float().mean()) for label, slot in held.items()
    )
    slots = list(held.values())
    return len(slots), len(slots) - len(set(slots)), share, sum(slot == floor for slot in slots)


def boundary(segmentation: torch.Tensor) -> torch.Tensor:
    """Segmentations (..., H, W) -> True at the object pixels (label > 0) that have a 4-neighbour of
    another label (the frame's edge is no neighbour)."""
    H, W = segmentation.shape[-2:]
    flat = segmentation.reshape(-1, 1, H, W)  # (N, 1, H, W): replicate padding wants a channel
    padded = F.pad(flat, (1, 1, 1, 1), mode="replicate").view(*segmentation.shape[:-2], H + 2, W + 2)
    inside = torch.ones_like(segmentation, dtype=torch.bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):  # up, down, left, right
        inside &= padded[..., dy : dy + H, dx : dx + W] == segmentation
    return ~inside & (segmentation > 0)


def boundary_places(
    held_by: torch.Tensor, segmentation: torch.Tensor, num_slots: int
) -> tuple[int, int, int]:
    """One frame (H, W) -> how many boundary pixels lie in their object's slot (the slot with most of
    the object's pixels), in the background's slot (when that is another), and in any other slot."""
    floor, held = owners(held_by, segmentation, num_slots)
    edge = boundary(segmentation)
    own = background = other = 0
    for label, holder in held.items():
        slots = held_by[(segmentation == label) & edge]
        own += int((slots == holder).sum())
        background += int(((slots == floor) & (slots != holder)).sum())
        other += int(((slots != floor) & (slots != holder)).sum())
    return own, background, other


def floor_in_holders(held_by: torch.Tensor, segmentation: torch.Tensor, num_slots: int) -> tuple[int, int]:
    """One frame (H, W) -> the background's pixels in the slots that hold an object (the slot with
    most of an object's pixels) other than the background's own slot, and all the pixels of those
    slots: FG-ARI does not see the first."""
    floor, held = owners(held_by, segmentation, num_slots)
    holding = torch.zeros(num_slots, dtype=torch.bool)
    holding[list(held.values())] = True
    holding[floor] = False
    in_holders = holding[held_by]  # (H, W)
    return int((in_holders & (segmentation == 0)).sum()), int(in_holders.sum())


def summary(name: str, masks: torch.Tensor, clips: dict[str, torch.Tensor]) -> str:
    """Masks (N, T, K, H, W) of N test clips and their ``segmentation``, ``masks`` and ``ids`` -> one line."""
    num_slots = masks.shape[2]
    held_by = masks.argmax(dim=2)  # (N, T, H, W)
    segmentation = clips["segmentation"]
    per_frame = [
        (
            *holders(frame, labels, num_slots),
            *boundary_places(frame, labels, num_slots),
            *floor_in_holders(frame, labels, num_slots),
        )
        for frame, labels in zip(held_by.flatten(0, 1), segmentation.flatten(0, 1), strict=True)
    ]
    totals = torch.tensor(per_frame, dtype=torch.float64).sum(dim=0).tolist()
    objects, merged, share, floor, own, background, other, floor_held, held = totals
    interior = torch.where(boundary(segmentation), torch.zeros_like(segmentation), segmentation)
    edges = own + background + other
    mot = slot_mot_metrics(held_by, clips["masks"], clips["ids"], num_slots=num_slots)
    return (
        f"{name}: {objects:.0f} objects; in another's slot {merged / objects:.3f}, share of their pixels in "
        f"their slot {share / objects:.3f}, held by the background's slot {floor / objects:.3f}; FG-ARI "
        f"{torch.nanmean(fg_ari(masks, segmentation)).item():.3f}, interior only "
        f"{torch.nanmean(fg_ari(masks, interior)).item():.3f}; boundary pixels "
        f"{edges / int((segmentation > 0).sum()):.2f} of the objects', in their object's slot "
        f"{own / edges:.3f}, the background's {background / edges:.3f}, another {other / edges:.3f}; "
        f"background in the objects' slots but its own {floor_held / held:.3f}; matched IoU "
        f"{torch.nanmean(hungarian_miou(masks, segmentation)).item():.3f}; MOTA {mot.mota:.1f} %, "
        f"mostly tracked {mot.mostly_tracked:.1f} % ({mot.frames})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished object-centric run folders")
    parser.add_argument(
        "--floor", type=float, nargs="*", default=[], help="also k-means floors at these position weights"
    )
    args = parser.parse_args()
    for i, folder in enumerate(args.runs):
        run = load_run(folder)
        masks, clips = [], []
        for batch in run.data.test_dataloader():
            with torch.no_grad():
                masks.append(run.task.model(batch["video"]).masks[:, :, :, 0])  # (B, T, K, H, W)
            steps = masks[-1].shape[1]
            clips.append({key: batch[key][:, :steps] for key in ("video", "segmentation", "masks")})
            clips[-1]["ids"] = batch["ids"]
        together = {key: torch.cat([c[key] for c in clips]) for key in clips[0]}
        for weight in args.floor if i == 0 else []:
            colours = chromaticity(together["video"])  # (N, T, 3, H, W)
            floor = torch.stack([kmeans_masks(clip, FLOOR_CLUSTERS, weight) for clip in colours])
            print(summary(f"k-means floor (chromaticity, (y, x) weight {weight:g})", floor, together))
        print(summary(str(folder), torch.cat(masks), together))


if __name__ == "__main__":
    main()
