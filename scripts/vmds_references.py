"""Two reference rows for the equal-wall-clock tables of docs/object_centric.md, from the test clips alone:

- background only: every object pixel painted the background colour (black), so the
  reconstruction MSE is the mean square of the frames;
- one slot takes every pixel: FG-ARI (per frame, as the object-centric task computes it)
  is 1 on frames where one sprite is visible and 0 on the others.

    python scripts/vmds_references.py --test-size 256 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics

import torch

from attnlab.data.sprites import VMDSData
from attnlab.metrics.segmentation import fg_ari


def references(seed: int, test_size: int) -> tuple[float, float]:
    clips = VMDSData(seed=seed, test_size=test_size).build("test")
    squares, aris = [], []
    for i in range(len(clips)):
        clip = clips[i]
        squares.append(clip["video"].square().mean())
        labels = clip["segmentation"]  # (T, H, W)
        one_slot = torch.ones(labels.shape[0], 1, *labels.shape[1:])  # (T, K=1, H, W)
        aris.append(fg_ari(one_slot, labels))  # (T,)
    return torch.stack(squares).mean().item(), torch.nanmean(torch.cat(aris)).item()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--test-size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = [references(seed, args.test_size) for seed in args.seeds]
    for name, values in zip(("background-only MSE", "one-slot FG-ARI"), zip(*rows, strict=True), strict=True):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        per_seed = ", ".join(f"{v:.4f}" for v in values)
        print(f"{name}: {statistics.mean(values):.4f} ± {spread:.4f} (seeds: {per_seed})")


if __name__ == "__main__":
    main()
