"""Where the authors' ViMON checkpoint tracks worse on our generated VMDS clips: MOT and FG-ARI
of ``ckpt_vimon_vmds.pt`` on groups of test clips split by one property at a time.

The checkpoint is run once on the test clips (posterior mean, all 10 frames); each clip gets
its properties from the generator's own parameters:

- ``objects``: number of sprites;
- ``radius``: the smallest sprite's circumradius, pixels;
- ``colour``: the smallest RGB distance between two sprites' colours (0-441), or between a
  sprite and the black background (the sprite's brightness) when that is smaller;
- ``speed``: the fastest sprite's mean displacement per frame, pixels;
- ``hidden``: the largest fraction of one sprite's silhouette hidden behind others, over frames;

then MOT (background excluded, frames 3-10: the authors' protocol) and FG-ARI are computed on
the clips below and above each property's median. A property whose two halves differ by much
more than the others is what to compare with the authors' VMDS.

    python scripts/vimon_checkpoint_clips.py ../shared/reference/vimon/ckpt_vimon_vmds.pt --clips 256
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from attnlab.data.sprites import VideoSprites, VMDSData, amodal_masks
from attnlab.metrics.mot import AUTHORS_PROTOCOL, mot_metrics_from_tensors
from attnlab.metrics.segmentation import fg_ari
from attnlab.models.object_centric.vimon import ViMONConfig
from attnlab.runs.official import load_official_vimon

PROPERTIES = ("objects", "radius", "colour", "speed", "hidden")


@dataclass
class Predictions:
    slot_ids: torch.Tensor  # (N, T, H, W) argmax slot of the decoder masks
    gt: torch.Tensor  # (N, T, 1 + K, H, W) bool, channel 0 background
    ids: torch.Tensor  # (N, K) track ids, 0 = no sprite
    ari: torch.Tensor  # (N,) FG-ARI per clip (mean over frames with objects)


def properties(clips: VideoSprites, index: int) -> dict[str, float]:
    clip = clips.clip(index)
    tracks, size = clip.tracks, clips.config.image_size
    colours = tracks.colours[0].astype(np.float64)  # (K, 3)
    gaps = [np.linalg.norm(c) for c in colours]  # against the black background
    gaps += [np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[i + 1 :]]
    steps = np.linalg.norm(np.diff(tracks.centers, axis=0), axis=-1)  # (T-1, K)
    amodal = amodal_masks(tracks, size)  # (T, K, H, W)
    visible = np.stack([clip.segmentation == k + 1 for k in range(tracks.num_objects)], axis=1)
    area = amodal.sum(axis=(2, 3)).clip(min=1)
    hidden = 1.0 - visible.sum(axis=(2, 3)) / area  # (T, K)
    return {
        "objects": float(tracks.num_objects),
        "radius": float(tracks.radii.min()),
        "colour": float(min(gaps)),
        "speed": float(steps.mean(axis=0).max()),
        "hidden": float(hidden.max()),
    }


@torch.no_grad()
def predict(checkpoint: Path, clips: VideoSprites, batch: int) -> Predictions:
    model = load_official_vimon(checkpoint, config=ViMONConfig(num_slots=6)).eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, len(clips), batch):
        samples = [clips[i] for i in range(start, min(start + batch, len(clips)))]
        video = torch.stack([s["video"] for s in samples])
        masks = model(video).masks[:, :, :, 0]  # (B, T, K, H, W)
        seg = torch.stack([s["segmentation"] for s in samples])
        parts.append(
            (
                masks.argmax(2).to(torch.uint8),
                torch.stack([s["masks"] for s in samples]),
                torch.stack([s["ids"] for s in samples]),
                torch.stack([torch.nanmean(fg_ari(m, s)) for m, s in zip(masks, seg, strict=True)]),
            )
        )
    slot_ids, gt, ids, ari = (torch.cat(p) for p in zip(*parts, strict=True))
    return Predictions(slot_ids, gt, ids, ari)


def scores(p: Predictions, keep: torch.Tensor, num_slots: int = 6) -> dict[str, float]:
    slot_ids, gt, ids = p.slot_ids[keep], p.gt[keep], p.ids[keep]
    pred = torch.nn.functional.one_hot(slot_ids.long(), num_slots).permute(0, 1, 4, 2, 3).bool()
    objects_then_bg = torch.cat([gt[:, :, 1:], gt[:, :, :1]], dim=2)  # background last
    track = torch.where(ids > 0, ids, torch.full_like(ids, -1))
    gt_ids = torch.cat([track, torch.zeros_like(track[:, :1])], dim=1)[:, None].expand(-1, gt.shape[1], -1)
    m = mot_metrics_from_tensors(
        pred, objects_then_bg, gt_ids, num_bg=1, exclude_bg=True, protocol=AUTHORS_PROTOCOL
    )
    return {
        "clips": float(keep.sum()),
        "MOTA": m.mota,
        "MOTP": m.motp,
        "miss": m.num_misses,
        "FP": m.num_false_positives,
        "switch": m.num_switches,
        "FG-ARI": float(torch.nanmean(p.ari[keep])),
    }


def row(name: str, s: dict[str, float]) -> str:
    return (
        f"| {name} | {s['clips']:.0f} | {s['MOTA']:.1f} | {s['MOTP']:.1f} | {s['miss']:.1f} | "
        f"{s['FP']:.1f} | {s['switch']:.1f} | {s['FG-ARI']:.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", default="standard", help="a VMDS variant (small, large, occlusion, ...)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    clips = VMDSData(seed=args.seed, variant=args.variant, test_size=args.clips).build("test")
    p = predict(args.checkpoint, clips, args.batch)
    props = [properties(clips, i) for i in range(len(clips))]
    print("| clips | n | MOTA % | MOTP % | miss % | FP % | switch % | FG-ARI |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(row(f"all ({args.variant})", scores(p, torch.ones(len(clips), dtype=torch.bool))))
    for name in PROPERTIES:
        values = torch.tensor([q[name] for q in props])
        median = float(values.median())
        low = values <= median
        if low.all() or not low.any():  # one value: nothing to split
            continue
        print(row(f"{name} ≤ {median:.3g}", scores(p, low)))
        print(row(f"{name} > {median:.3g}", scores(p, ~low)))


if __name__ == "__main__":
    main()
