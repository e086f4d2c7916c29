"""Does the slot that holds an object paint its colour, or does another slot, at a small weight?

In the per-pixel mixture, -log sum_k m_k N(x; c_k, sigma), a pixel is explained by any slot that
paints its colour, even one whose mask there is small: the slot that holds the pixel (the argmax of
the masks) may paint something else. This prints, over the object pixels of a finished
object-centric run's first test batch, the mean squared colour error of the holding slot and of the
best slot (docs/video_reasoning.md, "one motion per slot"). Equal numbers: each object's slot paints
it; a holding slot far worse than the best: another slot paints it for it.

    python scripts/slot_colours.py runs/motionfit4-s0 runs/motionfit8-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from attnlab.explorer.viewers import load_run


def holder_and_best_errors(
    masks: torch.Tensor, colours: torch.Tensor, target: torch.Tensor, segmentation: torch.Tensor
) -> tuple[float, float]:
    """Masks (B, T, K, 1, H, W), each slot's colours (B, T, K, C, H, W), the target (B, T, C, H, W)
    and the segmentation (B, T, H, W), 0 the background -> the mean over object pixels of the
    squared error of the slot with the largest mask and of the slot with the smallest error."""
    errors = (colours - target[:, :, None]).square().sum(dim=3)  # (B, T, K, H, W)
    holder = masks[:, :, :, 0].argmax(dim=2, keepdim=True)  # (B, T, 1, H, W)
    objects = segmentation > 0  # (B, T, H, W)
    held = errors.gather(2, holder)[:, :, 0][objects]
    best = errors.min(dim=2).values[objects]
    return held.mean().item(), best.mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished object-centric run folders")
    for folder in parser.parse_args().runs:
        run = load_run(folder)
        batch = next(iter(run.data.test_dataloader()))
        with torch.no_grad():
            out = run.task.model(batch["video"])
        target = run.task.reconstruction_target(batch)[:, :, :3]  # the colour: rgb or chromaticity
        held, best = holder_and_best_errors(out.masks, out.rgb[:, :, :, :3], target, batch["segmentation"])
        print(f"{folder}: object pixels' squared colour error, holding slot {held:.4f}, best slot {best:.4f}")


if __name__ == "__main__":
    main()
