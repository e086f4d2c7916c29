"""Frozen probes on a finished V-JEPA run with another probe budget than the recipe's test used.

    PYTHONPATH=src python scripts/vjepa_probes.py RUN_DIR [--steps 1000] [--seed 0] [--standardize]

Reads the run's config.yaml (model, data) and model.safetensors, then fits attentive and
average-pooling probes (attnlab.train.vjepa_probe, as the vjepa task does at test time) on the
target encoder, the context encoder and a randomly initialised encoder (the floor), for every
label of the dataset, and prints one markdown row per encoder and probe.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from attnlab.catalog import DATAMODULES
from attnlab.models.vjepa.encoder import VideoViT
from attnlab.runs.spec import resolve
from attnlab.train.composite import build_model
from attnlab.train.vjepa_probe import KINDS, ProbeConfig, extract, fit_probe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--standardize", action="store_true", help="task.probe.standardize for every probe")
    args = parser.parse_args()
    spec = resolve(args.run / "config.yaml", [])
    model = build_model(spec.model_name, spec.model_config)
    model.load_state_dict(load_file(args.run / "model.safetensors"))
    data = DATAMODULES.get(spec.data_name or "").cls(seed=spec.seed, **spec.data_args)
    keys = list(data.label_names)
    torch.manual_seed(args.seed)
    floor = VideoViT(model.config.encoder())
    encoders = {
        "target encoder": model.target_encoder,
        "context encoder": model.encoder,
        "random (floor)": floor,
    }
    cpu = torch.device("cpu")
    print(f"| encoder | probe | {' | '.join(keys)} |")
    print(f"| --- | --- |{' --- |' * len(keys)}")
    for name, encoder in encoders.items():
        encoder.eval()
        with torch.no_grad():
            train, train_labels = extract(encoder, data.probe_dataloader(), keys, cpu)
            test, test_labels = extract(encoder, data.test_dataloader(), keys, cpu)
        for kind in KINDS:
            accs = []
            for i, key in enumerate(keys):
                classes = len(data.label_names[key])
                config = ProbeConfig(steps=args.steps, standardize=args.standardize)
                probe = fit_probe(kind, train, train_labels[key], classes, config, seed=args.seed + i)
                with torch.no_grad():
                    accs.append(float((probe(test).argmax(-1) == test_labels[key]).float().mean()))
            print(f"| {name} | {kind} | {' | '.join(f'{100 * a:.1f}' for a in accs)} |", flush=True)


if __name__ == "__main__":
    main()
