"""aeon's reference classifiers and the prior floor on the exact split the signal recipes use.

    PYTHONPATH=src python scripts/signals_baselines.py --problem BasicMotions --seeds 0 1 2

The split is the ``uea`` datamodule's (``val_per_class`` training series of each class held
out by the seed, the rest fit, the test file tests), so the rows compare with
``attnlab run san1d-basic_motions --seed S``. Each method sees the series as read (aeon's
classifiers normalise as they were published to). Prints one JSON line per method and seed:
1-NN with DTW (full window), MiniRocket (10,000 kernels, ridge classifier), and the prior floor
(always the most frequent training class). ``--predictions FILE`` also writes each method's
test predictions per seed as JSON, for scripts/signals_confusion.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from attnlab.data.uea import UEAData


def run(problem: str, seed: int, val_per_class: int) -> list[dict[str, object]]:
    """One row per method: its test accuracy and, under "predictions", its test predictions."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    data = UEAData(seed=seed, problem=problem, val_per_class=val_per_class)
    train, y_train = data.raw("train")
    test, y_test = data.raw("test")
    X_train, X_test = np.stack(train), np.stack(test)  # (N, C, L): equal-length problems only
    majority = np.full(len(y_test), np.bincount(y_train).argmax())
    found: list[tuple[str, np.ndarray, float]] = [("prior (most frequent training class)", majority, 0.0)]
    for name, clf in (
        ("1-NN DTW", KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)),
        ("MiniRocket", MiniRocketClassifier(random_state=seed)),
    ):
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        found.append((name, np.asarray(clf.predict(X_test)).astype(int), time.perf_counter() - start))
    common = {"problem": problem, "seed": seed, "train": len(train), "test": len(test)}
    return [
        common
        | {
            "method": name,
            "acc": float((predictions == y_test).mean()),
            "seconds": round(seconds, 1),
            "predictions": predictions.tolist(),
        }
        for name, predictions, seconds in found
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="BasicMotions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--val-per-class", type=int, default=2)
    parser.add_argument("--predictions", type=Path, help="write {method: {seed: predictions}} here")
    args = parser.parse_args()
    saved: dict[str, dict[int, object]] = {}
    for seed in args.seeds:
        for row in run(args.problem, seed, args.val_per_class):
            saved.setdefault(str(row["method"]), {})[seed] = row.pop("predictions")
            print(json.dumps(row), flush=True)
    if args.predictions:
        args.predictions.write_text(json.dumps({"problem": args.problem, "methods": saved}))


if __name__ == "__main__":
    main()
