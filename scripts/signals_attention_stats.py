"""Does a 1D-SAN's attention follow the signal's magnitude? Per class and block, the mean over
the test recordings of the correlation between the attention each step receives (averaged over
the windows covering it, as the report's picture) and the channel-mean |standardised signal|.

    PYTHONPATH=src python scripts/signals_attention_stats.py RUN_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from attnlab.data.uea import UEAData
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model
from attnlab.train.signals import attention_along


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    spec = resolve(args.run / "config.yaml", [])
    model = build_model(spec.model_name, spec.model_config)
    model.load_state_dict(load_file(args.run / "model.safetensors"))
    model.eval()
    common = {k: v for k, v in spec.data_args.items() if k in ("problem", "root", "window", "val_per_class")}
    data = UEAData(seed=spec.seed, **common)
    series = data.series("test")
    blocks = len(model.blocks)
    print("| class | " + " | ".join(f"r, SAB {b + 1}" for b in range(blocks)) + " |")
    print("| --- |" + " --- |" * blocks)
    for c, name in enumerate(data.class_names):
        corr: list[list[float]] = [[] for _ in range(blocks)]
        for signal, label in zip(series.signals, series.labels, strict=True):
            if int(label) != c:
                continue
            received = attention_along(model, signal)  # (blocks, L), NaN after the last window
            read = ~received[0].isnan()
            magnitude = signal[:, read].abs().mean(0).numpy()
            for b in range(blocks):
                corr[b].append(float(np.corrcoef(received[b, read].numpy(), magnitude)[0, 1]))
        print(f"| {name} | " + " | ".join(f"{np.mean(r):+.2f}" for r in corr) + " |")


if __name__ == "__main__":
    main()
