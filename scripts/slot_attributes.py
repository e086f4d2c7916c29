"""Do a slot encoder's object tokens hold what CLEVRER-lite's questions ask about: each object's
colour, shape and material?

For each object in each frame of a finished object-centric run's clips, the token that Aloe reads
(:func:`object_latents`: the slot's posterior mean and its mask summary) of the slot that holds the
object (most of its pixels under the masks' argmax) is labelled with the object's attributes from
the scene's annotation; a second row per run adds what the frame shows under that slot's mask
(``data.slot_pixels``: :func:`~attnlab.models.video_qa.mask_pixels.mask_pixels`). A logistic
regression fitted on the training split's objects is scored on the test split's. Two references
are measured the same way: the majority class (the floor), and the object's own pixels under the
ground-truth segmentation (mean and spread of RGB, chromaticity, area, and the height and width of
its box: what a frame at this size shows of it, with a perfect segmentation).
docs/video_reasoning.md, issue 16 part 3.

    python scripts/slot_attributes.py runs/motionfit4-k3-s0 runs/sfa-small-untrained
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader

from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES, read_annotation
from attnlab.explorer.viewers import LoadedRun, load_run
from attnlab.models.object_centric.colour import chromaticity
from attnlab.models.video_qa.aloe_slots import SUMMARY_DIM, object_latents
from attnlab.models.video_qa.mask_pixels import PIXEL_DIM

sys.path.insert(0, str(Path(__file__).parent))  # the sibling script that finds each object's slot
from object_holders import owners

ATTRIBUTES = ("colour", "shape", "material")


def pixel_features(frame: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """One frame (3, H, W) in [0, 1] and one object's mask (H, W) -> mean and standard deviation
    of RGB (a metal's highlights spread it), mean chromaticity, the area and the box's height and
    width as fractions of the frame's."""
    H, W = mask.shape
    rgb, spread = frame[:, mask].mean(dim=1), frame[:, mask].std(dim=1, correction=0)
    chroma = chromaticity(frame[None, None])[0, 0][:, mask].mean(dim=1)
    rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
    height, width = (rows.max() - rows.min() + 1) / H, (cols.max() - cols.min() + 1) / W
    return [
        *rgb.tolist(),
        *spread.tolist(),
        *chroma.tolist(),
        float(mask.float().mean()),
        float(height),
        float(width),
    ]


def objects_of(
    tokens: torch.Tensor, masks: torch.Tensor, video: torch.Tensor, segmentation: torch.Tensor
) -> list[tuple[int, list[float], list[float]]]:
    """One clip: tokens (T, K, D), masks (T, K, H, W), video (T, 3, H, W), segmentation (T, H, W)
    -> per object and frame: its label, its holder slot's token and its pixel features."""
    held_by = masks.argmax(dim=1)  # (T, H, W)
    found = []
    for t in range(segmentation.shape[0]):
        _, held = owners(held_by[t], segmentation[t], masks.shape[1])
        for label, slot in held.items():
            pixels = pixel_features(video[t], segmentation[t] == label)
            found.append((label, tokens[t, slot].tolist(), pixels))
    return found


def attribute_rows(run: LoadedRun, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split's objects: slot tokens with pixels (N, D + 8 + 3, :func:`object_latents`), pixel
    features under the ground-truth mask (N, 12) and labels (N, 3)."""
    folder = run.data.source.folder
    tokens, pixels, labels = [], [], []
    for batch in DataLoader(run.data.dataset(split), batch_size=32):
        with torch.no_grad():
            latents, out = object_latents(run.task.model, batch["video"], pixels=True)
        steps = latents.shape[1]
        for b, scene in enumerate(batch["scene_index"].tolist()):
            objects = {o.object_id: o for o in read_annotation(folder.annotations[scene]).objects}
            clip = (
                latents[b],
                out.masks[b, :, :, 0],
                batch["video"][b, :steps],
                batch["segmentation"][b, :steps],
            )
            for label, token, pixel in objects_of(*clip):
                o = objects[label - 1]  # label k + 1 is object_id k
                tokens.append(token)
                pixels.append(pixel)
                labels.append([COLORS.index(o.color), SHAPES.index(o.shape), MATERIALS.index(o.material)])
    return np.array(tokens), np.array(pixels), np.array(labels)


def probe(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray
) -> list[float]:
    """Test accuracy per attribute of a logistic regression on standardised features."""
    scores = []
    for a in range(len(ATTRIBUTES)):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(train, train_labels[:, a])
        scores.append(float(model.score(test, test_labels[:, a])))
    return scores


def majority(train_labels: np.ndarray, test_labels: np.ndarray) -> list[float]:
    """Test accuracy per attribute of always answering the training split's most common value."""
    return [
        float((test_labels[:, a] == np.bincount(train_labels[:, a]).argmax()).mean())
        for a in range(len(ATTRIBUTES))
    ]


def latent_columns(width: int) -> list[int]:
    """The columns of the token Aloe reads without ``slot_pixels``: the latent and the mask summary."""
    latent = width - PIXEL_DIM - SUMMARY_DIM
    return [*range(latent), *range(latent + PIXEL_DIM, width)]


def line(name: str, scores: list[float]) -> str:
    return f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished object-centric runs on clevrer-lite")
    args = parser.parse_args()
    print("| tokens | " + " | ".join(ATTRIBUTES) + " |")
    print("| --- |" + " ---: |" * len(ATTRIBUTES))
    for i, folder in enumerate(args.runs):
        run = load_run(folder)
        train_tokens, train_pixels, train_labels = attribute_rows(run, "train")
        test_tokens, test_pixels, test_labels = attribute_rows(run, "test")
        if i == 0:
            print(
                line(
                    f"majority class ({len(train_labels)} / {len(test_labels)} objects)",
                    majority(train_labels, test_labels),
                )
            )
            print(
                line(
                    "the object's pixels (ground-truth mask)",
                    probe(train_pixels, train_labels, test_pixels, test_labels),
                )
            )
        latent = latent_columns(train_tokens.shape[1])
        plain = probe(train_tokens[:, latent], train_labels, test_tokens[:, latent], test_labels)
        print(line(str(folder), plain))
        print(
            line(
                f"{folder} + the pixels under its slot's mask",
                probe(train_tokens, train_labels, test_tokens, test_labels),
            )
        )


if __name__ == "__main__":
    main()
