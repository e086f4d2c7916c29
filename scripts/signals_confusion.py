"""Confusion matrices of every method of a docs/signals.md table, summed over seeds: the neural
runs of scripts/signals_runs.sh and the aeon baselines' predictions of
scripts/signals_baselines.py --predictions.

    PYTHONPATH=src python scripts/signals_confusion.py runs/signals-arrowhead \\
        --baselines runs/arrowhead_baselines.json --out docs/figures/signals/arrowhead_confusion.png

Each run's trained model is rebuilt from its folder and classifies the test recordings again
(the script checks this reproduces the run's own test accuracy). Prints a markdown table of
per-class recall and draws one matrix per method (counts; colour = share of the true class).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from attnlab.data.uea import UEAData
from attnlab.models._submodel import SubModel
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_submodel
from attnlab.train.figures import confusion_counts

NEURAL = {  # run-folder preset -> row name, in the docs' order
    "cnn1d": "1D-CNN",
    "san1d-pair355": "1D-SAN",
    "cnn1d-fft": "1D-CNN, FFT",
    "san1d-pair355-fft": "1D-SAN, FFT",
}


@torch.no_grad()
def run_predictions(run: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, predictions, class names) of a finished signal run on its test recordings."""
    spec = resolve(run / "config.yaml", [])
    model = build_submodel(SubModel(init_from=str(run)), "run").eval()
    keep = ("problem", "root", "window", "val_per_class")
    data = UEAData(seed=spec.seed, **{k: v for k, v in spec.data_args.items() if k in keep})
    series = data.series("test")
    preds = [int(model(signal[None]).logits.argmax(-1)) for signal in series.signals]
    labels, preds_array = np.asarray(series.labels, dtype=int), np.asarray(preds)
    recorded = json.loads((run / "metrics.json").read_text())["test/acc"]
    if abs((preds_array == labels).mean() - recorded) > 1e-6:
        raise SystemExit(
            f"{run}: rebuilt model gives {(preds_array == labels).mean():.4f}, the run {recorded:.4f}"
        )
    return labels, preds_array, data.class_names


def draw(matrices: dict[str, np.ndarray], names: list[str], tests: int, path: Path) -> None:
    """One panel per method; ``tests``: test recordings per seed (to count the seeds summed)."""
    cols = 4
    rows = (len(matrices) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.1 * rows), squeeze=False)
    for ax, (method, counts) in zip(axes.flat, matrices.items(), strict=False):
        share = counts / counts.sum(1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(counts):
            ax.text(
                j, i, str(count), ha="center", va="center", color="white" if share[i, j] > 0.6 else "black"
            )
        accuracy = 100 * np.trace(counts) / counts.sum()
        ax.set_title(f"{method}\n{accuracy:.1f} % ({counts.sum() // tests} seeds)", fontsize=9)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=30)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path)
    parser.add_argument("--baselines", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    saved = json.loads(args.baselines.read_text())
    outcomes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    test_labels: np.ndarray | None = None
    names: list[str] = []
    for preset, row in NEURAL.items():
        for run in sorted(m.parent for m in args.runs.glob(f"{preset}-s[0-9]*/metrics.json")):
            labels, preds, names = run_predictions(run)
            if test_labels is not None and not np.array_equal(labels, test_labels):
                raise SystemExit(f"{run}: another test set than the other runs'")
            test_labels = labels  # the test file is the same for every seed (the seed splits training)
            outcomes.setdefault(row, []).append((labels, preds))
    if test_labels is None:
        raise SystemExit(f"no runs named <preset>-s<seed> under {args.runs}")
    baselines = {
        method: [(test_labels, np.asarray(p)) for p in by_seed.values()]
        for method, by_seed in saved["methods"].items()
    }
    everything = baselines | outcomes
    matrices = {
        method: np.sum(
            [confusion_counts(torch.from_numpy(y), torch.from_numpy(p), len(names)).numpy() for y, p in runs],
            axis=0,
        )
        for method, runs in everything.items()
    }
    draw(matrices, names, len(test_labels), args.out)
    print(f"| method (seeds summed) | {' | '.join(f'recall {n} %' for n in names)} | accuracy % |")
    print("| --- |" + " --- |" * (len(names) + 1))
    for method, counts in matrices.items():
        recall = [f"{100 * counts[i, i] / counts[i].sum():.1f}" for i in range(len(names))]
        print(f"| {method} | {' | '.join(recall)} | {100 * np.trace(counts) / counts.sum():.1f} |")


if __name__ == "__main__":
    main()
