"""Test accuracy of finished signal runs against the sliding-window stride and the way window
scores are combined, on the recipe's test split and on long signals (``uea-long``: three
same-class test recordings joined by 20-step transitions).

    PYTHONPATH=src python scripts/signals_strides.py RUN_DIR [RUN_DIR ...] [--strides 1 5 10 20 30]

Give the runs of one model with different seeds to get mean ± std over them. The window length
is each trained model's (the 1D-CNN's output layer fixes it). Prints one markdown row per data
set, combination and stride (and one for the first window alone).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from attnlab.data.long_motions import LongMotionsData
from attnlab.data.uea import UEAData
from attnlab.models._submodel import SubModel
from attnlab.models.signals.windows import WindowClassifier
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_submodel


@torch.no_grad()
def accuracy(model: WindowClassifier, data: UEAData, first_window_only: bool = False) -> float:
    series = data.series("test")
    hits = 0
    for signal, label in zip(series.signals, series.labels, strict=True):
        x = signal[None, :, : model.window] if first_window_only else signal[None]
        hits += int(model(x).logits.argmax(-1).item() == int(label))
    return 100 * hits / len(series.signals)


def run_accuracies(run: Path, strides: list[int]) -> dict[tuple[str, str], float]:
    """{(data set, "first window" or "<how>, stride <s>"): accuracy %} of one run."""
    spec = resolve(run / "config.yaml", [])
    model = build_submodel(SubModel(init_from=str(run)), "run").eval()
    assert isinstance(model, WindowClassifier)
    common = {k: v for k, v in spec.data_args.items() if k in ("problem", "root", "window", "val_per_class")}
    sets = {
        "test recordings": UEAData(seed=spec.seed, **common),
        "long signals (3 joined)": LongMotionsData(seed=spec.seed, **common),
    }
    found = {}
    for name, data in sets.items():
        found[name, "first window only"] = accuracy(model, data, first_window_only=True)
        for how in ("mean", "vote"):
            model.combine_by = how
            for stride in strides:
                model.stride = stride
                found[name, f"{how}, stride {stride}"] = accuracy(model, data)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 5, 10, 20, 30])
    args = parser.parse_args()
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in args.runs:
        for key, acc in run_accuracies(run, args.strides).items():
            values[key].append(acc)
    names = ", ".join(run.name for run in args.runs)
    print(f"| data ({names}) | windows combined | accuracy % (mean ± std) | per run |")
    print("| --- | --- | --- | --- |")
    for (data, how), accs in values.items():
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        each = ", ".join(f"{a:.1f}" for a in accs)
        print(f"| {data} | {how} | {statistics.mean(accs):.1f} ± {spread:.1f} | {each} |")


if __name__ == "__main__":
    main()
