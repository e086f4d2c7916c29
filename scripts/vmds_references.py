"""Two reference rows for the equal-wall-clock tables of docs/object_centric.md, from the test clips alone:

- background only: every object pixel painted the background colour (black), so the
  reconstruction MSE is the mean square of the frames;
- one slot takes every pixel: FG-ARI (per frame, as the object-centric task computes it)
  is 1 on frames where one sprite is visible and 0 on the others.

    python scripts/vmds_references.py --test-size 256 --seeds 0 1 2
    python scripts/vmds_references.py --image-size 32 --num-frames 6 --max-objects 3   # sprites_small
    python scripts/vmds_references.py --clevrer-lite --clip-size 32 --num-frames 3   # its FG-ARI
    python scripts/vmds_references.py --clevrer-lite --clip-size 32 --num-frames 3 --kmeans 7 \
        --position-weights 0 1 2 [--kmeans-colour chromaticity]   # k-means on pixel colours, positions
    python scripts/vmds_references.py --clevrer-lite --clip-size 32 --num-frames 3 --kmeans 7 \
        --position-weights 1 --kmeans-colour chromaticity --kmeans-motion 4   # and the motion target
    python scripts/vmds_references.py --clevrer-lite --clip-size 32 --num-frames 3 --grids 3 --kmeans 7 \
        --position-weights 0 0.5 1 2 --kmeans-colour chromaticity --miou   # the matched IoU instead

With ``--clevrer-lite`` the clips are the clevrer-lite datamodule's test split (the same for every
seed: it is a scene range of one generated dataset), and only the FG-ARI row is meaningful (the
background is a lit grey floor, not black). ``--kmeans-motion W`` adds W times each pixel's motion
(the object-centric task's motion target, from the test clips' masks) to the k-means features: not a
floor (no model sees the motion at test time) but what that training target tells apart.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch

from attnlab.data.clevrer_lite_data import ClevrerLiteData
from attnlab.data.sprites import VMDSData
from attnlab.layers.kmeans import kmeans
from attnlab.metrics.segmentation import fg_ari, hungarian_miou
from attnlab.models.object_centric.colour import chromaticity
from attnlab.models.object_centric.motion import object_motion

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (masks, labels) -> a score per frame


def references(
    seed: int,
    test_size: int,
    image_size: int = 64,
    num_frames: int = 10,
    max_objects: int | None = None,
    variant: str = "standard",
    grids: tuple[int, ...] = (),
) -> tuple[float, ...]:
    data = VMDSData(
        seed=seed,
        variant=variant,  # type: ignore[arg-type]  # VMDSData checks the name
        test_size=test_size,
        image_size=image_size,
        num_frames=num_frames,
        max_objects=max_objects,
    )
    return clip_references(data.build("test"), grids)


def clevrer_lite_references(
    clip_size: int,
    num_frames: int,
    stride: int,
    grids: tuple[int, ...],
    kmeans: int = 0,
    position_weights: tuple[float, ...] = (),
    kmeans_colour: str = "rgb",
    motion_weight: float = 0.0,
    metric: Metric = fg_ari,
) -> tuple[float, ...]:
    data = ClevrerLiteData(seed=0, clip_size=clip_size, num_frames=num_frames, stride=stride)
    return clip_references(
        data.build("test"), grids, kmeans, position_weights, kmeans_colour, motion_weight, metric
    )


def grid_masks(frames: int, height: int, width: int, cells: int) -> torch.Tensor:
    """A fixed partition of the frame into cells x cells rectangles, as one-hot masks (T, K, H, W):
    slots that know where, not what (FG-ARI's floor for models whose masks are smooth regions)."""
    rows = torch.arange(height) * cells // height  # (H,) the cell row of each pixel row
    cols = torch.arange(width) * cells // width
    cell = rows[:, None] * cells + cols[None, :]  # (H, W)
    one_hot = torch.nn.functional.one_hot(cell, cells * cells).permute(2, 0, 1).float()  # (K, H, W)
    return one_hot.expand(frames, -1, -1, -1)


def kmeans_masks(
    video: torch.Tensor, clusters: int, position_weight: float, iterations: int = 30
) -> torch.Tensor:
    """Lloyd's k-means on each frame's pixels, as one-hot masks (T, K, H, W): the features are a
    pixel's colour and ``position_weight`` times its (y, x) in [0, 1], so weight 0 groups by colour
    alone (what a per-pixel encoder can see) and a large weight cuts the frame into regions. The
    centres start at the farthest-point pixels (the first pixel, then each time the pixel farthest
    from the centres so far), so the floor is deterministic and every distinct colour present in
    a frame of at most K colours starts a cluster of its own."""
    T, _, H, W = video.shape
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    where = position_weight * torch.stack([yy, xx]).flatten(1).T  # (H*W, 2)
    points = torch.cat([video.flatten(2).transpose(1, 2), where.expand(T, -1, -1)], dim=2)  # (T, H*W, 5)
    nearest = kmeans(points, clusters, iterations=iterations)[0]  # (T, H*W)
    return torch.nn.functional.one_hot(nearest, clusters).transpose(1, 2).view(T, clusters, H, W).float()


def clip_references(
    clips: torch.utils.data.Dataset,
    grids: tuple[int, ...] = (),
    kmeans: int = 0,
    position_weights: tuple[float, ...] = (),
    kmeans_colour: str = "rgb",
    motion_weight: float = 0.0,
    metric: Metric = fg_ari,
) -> tuple[float, ...]:
    """(mean square of the frames, one-slot FG-ARI, then the FG-ARI of each fixed grid and of k-means
    with ``kmeans`` clusters at each position weight) over the object-centric items of ``clips``;
    k-means reads each pixel's rgb or, with ``kmeans_colour="chromaticity"``, rgb / (r + g + b), and
    ``motion_weight`` times its motion (:func:`object_motion` of the clip's masks) where that is > 0.
    ``metric`` (masks, labels) -> per frame scores: FG-ARI, or :func:`hungarian_miou` in its place."""
    weights = position_weights if kmeans else ()
    squares, aris = [], [[] for _ in range(1 + len(grids) + len(weights))]
    for i in range(len(clips)):
        clip = clips[i]
        squares.append(clip["video"].square().mean())
        labels = clip["segmentation"]  # (T, H, W)
        colours = chromaticity(clip["video"]) if kmeans_colour == "chromaticity" else clip["video"]
        if motion_weight:
            motion = object_motion(clip["masks"][None])[0]  # (T, 2, H, W)
            colours = torch.cat([colours, motion_weight * motion], dim=1)  # (T, 5, H, W)
        one_slot = torch.ones(labels.shape[0], 1, *labels.shape[1:])  # (T, K=1, H, W)
        partitions = [
            one_slot,
            *(grid_masks(*labels.shape, g) for g in grids),
            *(kmeans_masks(colours, kmeans, w) for w in weights),
        ]
        for found, masks in zip(aris, partitions, strict=True):
            found.append(metric(masks, labels))  # (T,)
    return torch.stack(squares).mean().item(), *(torch.nanmean(torch.cat(a)).item() for a in aris)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--test-size", type=int, default=256)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--num-frames", type=int, default=10)
    parser.add_argument("--max-objects", type=int, default=None, help="default: the VMDS preset's 4")
    parser.add_argument("--variant", default="standard", help="a VMDS variant: large, small, occlusion, ...")
    parser.add_argument("--clevrer-lite", action="store_true", help="the clevrer-lite test clips instead")
    parser.add_argument("--clip-size", type=int, default=64, help="clevrer-lite: the clips' frame size")
    parser.add_argument("--stride", type=int, default=3, help="clevrer-lite: every this many frames")
    parser.add_argument("--grids", type=int, nargs="*", default=[], help="also fixed g x g grids' FG-ARI")
    parser.add_argument("--kmeans", type=int, default=0, help="clevrer-lite: also k-means with K clusters")
    parser.add_argument(
        "--position-weights", type=float, nargs="*", default=[0.0], help="k-means: the weights of (y, x)"
    )
    parser.add_argument("--kmeans-colour", choices=["rgb", "chromaticity"], default="rgb")
    parser.add_argument(
        "--kmeans-motion", type=float, default=0.0, help="k-means: the weight of each pixel's motion"
    )
    parser.add_argument(
        "--miou", action="store_true", help="clevrer-lite: the matched IoU of the objects instead of FG-ARI"
    )
    args = parser.parse_args()
    if args.kmeans < 0:
        parser.error(f"--kmeans must be >= 0, got {args.kmeans}")
    if args.kmeans_motion < 0:
        parser.error(f"--kmeans-motion must be >= 0, got {args.kmeans_motion}")
    if args.clevrer_lite:
        rows = [
            clevrer_lite_references(
                args.clip_size,
                args.num_frames,
                args.stride,
                tuple(args.grids),
                args.kmeans,
                tuple(args.position_weights),
                args.kmeans_colour,
                args.kmeans_motion,
                hungarian_miou if args.miou else fg_ari,
            )
        ]
    else:
        rows = [
            references(
                seed,
                args.test_size,
                args.image_size,
                args.num_frames,
                args.max_objects,
                args.variant,
                tuple(args.grids),
            )
            for seed in args.seeds
        ]
    weights = args.position_weights if args.kmeans and args.clevrer_lite else []
    score = "matched IoU" if args.miou and args.clevrer_lite else "FG-ARI"
    names = [
        "background-only MSE",
        f"one-slot {score}",
        *(f"{g}x{g} grid {score}" for g in args.grids),
        *(
            f"k-means ({args.kmeans}, {args.kmeans_colour}, position weight {w:g}, motion weight "
            f"{args.kmeans_motion:g}) {score}"
            for w in weights
        ),
    ]
    for name, values in zip(names, zip(*rows, strict=True), strict=True):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        per_seed = ", ".join(f"{v:.4f}" for v in values)
        print(f"{name}: {statistics.mean(values):.4f} ± {spread:.4f} (seeds: {per_seed})")


if __name__ == "__main__":
    main()
