"""Test accuracy of a finished signal run against the sliding-window stride and the way window
scores are combined, on the recipe's test split and on long signals (``uea-long``: three
same-class test recordings joined by 20-step transitions).

    PYTHONPATH=src python scripts/signals_strides.py RUN_DIR [--strides 1 5 10 20 30]

The window length is the trained model's (the 1D-CNN's output layer fixes it). Prints one
markdown row per data set and stride (and one for the first window alone).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from attnlab.data.long_motions import LongMotionsData
from attnlab.data.uea import UEAData
from attnlab.models.signals.windows import WindowClassifier
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model


@torch.no_grad()
def accuracy(model: WindowClassifier, data: UEAData, first_window_only: bool = False) -> float:
    series = data.series("test")
    hits = 0
    for signal, label in zip(series.signals, series.labels, strict=True):
        x = signal[None, :, : model.window] if first_window_only else signal[None]
        hits += int(model(x).logits.argmax(-1).item() == int(label))
    return hits / len(series.signals)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 5, 10, 20, 30])
    args = parser.parse_args()
    spec = resolve(args.run / "config.yaml", [])
    model = build_model(spec.model_name, spec.model_config)
    model.load_state_dict(load_file(args.run / "model.safetensors"))
    model.eval()
    common = {k: v for k, v in spec.data_args.items() if k in ("problem", "root", "window", "val_per_class")}
    sets = {
        "test recordings": UEAData(seed=spec.seed, **common),
        "long signals (3 joined)": LongMotionsData(seed=spec.seed, **common),
    }
    print(f"| data ({spec.model_name}, seed {spec.seed}) | stride | windows per signal | mean % | vote % |")
    print("| --- | --- | --- | --- | --- |")
    for name, data in sets.items():
        length = data.series("test").signals[0].shape[1]
        first = f"{100 * accuracy(model, data, first_window_only=True):.1f}"
        print(f"| {name} | first window only | 1 | {first} | {first} |")
        for stride in args.strides:
            model.stride = stride
            row = []
            for how in ("mean", "vote"):
                model.combine_by = how
                row.append(f"{100 * accuracy(model, data):.1f}")
            windows = (length - model.window) // stride + 1
            print(f"| {name} | {stride} | {windows} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
