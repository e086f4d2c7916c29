"""Can collisions be seen in the oracle's tokens? (docs/video_reasoning.md)

For every pair of objects of a video that the clip's frames show together, the closest
they come on the ground over those frames (the oracle tokens' x, y and in-view flag),
and whether they collide within the clip's span. A one-number rule, "they collided when
they came closer than t", fit on the training split, then scored on the test split: if
it is accurate, the clip's positions hold the collisions and a model that misses them
fails to learn them, not to see them. Objects touch at twice the radius (1.0 in
CLEVRER-lite).

    python scripts/collision_visibility.py RUN

RUN: a clevrer-qa run folder (any encoder); its data settings pick the videos and clip.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from attnlab.data.clevrer import ClevrerAnnotation, read_annotation
from attnlab.data.clevrer_qa import ClevrerQAData, oracle_features
from attnlab.errors import AttnlabError, InputError
from attnlab.runs.spec import resolve
from attnlab.train.engine import build

Pairs = np.ndarray  # (P, 2) float64: closest distance, collided (0/1)


def pair_distances(annotation: ClevrerAnnotation, indices: list[int]) -> Pairs:
    """Per object pair shown together in a frame of ``indices``: closest distance, collided in the span."""
    tokens = oracle_features(annotation, indices, len(annotation.objects))  # (T, N, 16)
    xy, shown = tokens[..., -3:-1].astype(np.float64), tokens[..., -1] > 0
    span = range(indices[0], indices[-1] + 1)
    hits = {frozenset(c.objects) for c in annotation.collisions if c.frame in span}
    ids = [o.object_id for o in annotation.objects]
    rows = []
    for i, j in itertools.combinations(range(len(ids)), 2):
        both = shown[:, i] & shown[:, j]
        if both.any():
            closest = np.linalg.norm(xy[both, i] - xy[both, j], axis=-1).min()
            rows.append((closest, frozenset((ids[i], ids[j])) in hits))
    return np.array(rows, np.float64).reshape(-1, 2)


def fit_threshold(pairs: Pairs) -> float:
    """The t maximising the accuracy of "collided iff closest <= t" (the smallest such t)."""
    order = np.argsort(pairs[:, 0], kind="stable")
    distance, collided = pairs[order, 0], pairs[order, 1]
    missed = 1 - collided
    # rule with t = distance[k]: pairs 0..k say collided, the rest say not
    right = np.cumsum(collided) + (missed.sum() - np.cumsum(missed))
    candidates = np.flatnonzero(np.r_[distance[1:] != distance[:-1], True])  # the last of each tie
    if missed.sum() >= right[candidates].max():
        return -np.inf  # no pair said collided is as good as any t
    return float(distance[candidates[right[candidates].argmax()]])


def rule_accuracy(pairs: Pairs, threshold: float) -> float:
    return float(np.mean((pairs[:, 0] <= threshold) == (pairs[:, 1] > 0)))


def auc(pairs: Pairs) -> float:
    """P(a collided pair came closer than a pair that did not), ties counting half."""
    hit, miss = pairs[pairs[:, 1] > 0, 0], pairs[pairs[:, 1] == 0, 0]
    if not len(hit) or not len(miss):
        raise InputError("the AUC needs pairs that collided and pairs that did not")
    return float(np.mean(hit[:, None] < miss[None, :]) + 0.5 * np.mean(hit[:, None] == miss[None, :]))


def split_pairs(run: Path) -> dict[str, Pairs]:
    """The pairs of the train and test splits of ``run``'s data."""
    _, data = build(resolve(run / "config.yaml", []))
    if not isinstance(data, ClevrerQAData):
        raise InputError(f"{run} is not a run on clevrer-qa data")
    annotations = data.source.folder.annotations
    out = {}
    for split in ("train", "test"):
        scenes = data.source.scenes(split)
        if missing := [s for s in scenes if s not in annotations]:
            raise InputError(f"{len(missing)} {split} videos have no annotation, e.g. scene {missing[0]}")
        pairs = [pair_distances(read_annotation(annotations[s]), data.spec.indices) for s in scenes]
        out[split] = np.concatenate(pairs)
        if not len(out[split]):
            raise InputError(f"no {split} video shows two objects together")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    try:
        pairs = split_pairs(args.run)
        threshold = fit_threshold(pairs["train"])
        print(f"threshold, fit on train: {threshold:.3f}")
        print("| split | pairs | collided | rule accuracy | majority | AUC |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for split, p in pairs.items():
            rate = p[:, 1].mean()
            print(
                f"| {split} | {len(p)} | {int(p[:, 1].sum())} | {rule_accuracy(p, threshold):.3f} | "
                f"{max(rate, 1 - rate):.3f} | {auc(p):.3f} |"
            )
    except AttnlabError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
