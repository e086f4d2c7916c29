"""How long and how fast the frozen probes of a finished ``vjepa`` run must train: each probe
setting fitted on the run's probe clips less a held-out part, with its accuracy on the fitting
clips, the held-out clips and the test clips, for the run's target encoder and its floor.

    python scripts/vjepa_probe_sweep.py RUN --settings constant:300:1e-3 cosine:1500:1e-3 \
        [--kinds attentive average] [--held-out 256] [--features FILE]

A setting is ``schedule:steps:lr`` (``task.probe.schedule``, ``steps``, ``lr``; for the average
probe the lr is its ``average_lr``); the rest of ``task.probe`` is the run's. ``--features``
keeps the frozen features in FILE (made once, then read), so that several sweeps of one run
encode its clips once.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import torch

from attnlab.runs import rundir
from attnlab.runs.weights import load_final_weights
from attnlab.train.engine import build, resolve
from attnlab.train.vjepa_probe import KINDS, ProbeConfig, ProbeKind, extract, fit_probe

Split = tuple[torch.Tensor, dict[str, torch.Tensor]]  # features (N, L, D), labels (N,) per key


def features(task: Any, data: Any, cache: Path | None) -> dict[str, tuple[Split, Split]]:
    """Per encoder ("probe": the run's target encoder, "floor": the random one its test fits),
    the (probe clips, test clips) features and labels."""
    if cache is not None and cache.is_file():
        return torch.load(cache)  # type: ignore[no-any-return]
    data.setup("test")
    floor = task.floor_encoder()  # the floor the run's test builds
    keys, cpu = list(data.label_names), torch.device("cpu")
    out = {
        name: (
            extract(encoder.eval(), data.probe_dataloader(), keys, cpu),
            extract(encoder.eval(), data.test_dataloader(), keys, cpu),
        )
        for name, encoder in (("probe", task.vjepa.target_encoder), ("floor", floor))
    }
    if cache is not None:
        torch.save(out, cache)
    return out


@torch.no_grad()
def accuracy(probe: torch.nn.Module, feats: torch.Tensor, labels: torch.Tensor) -> float:
    hits = sum(
        int((probe(feats[i : i + 256]).argmax(-1) == labels[i : i + 256]).sum())
        for i in range(0, len(feats), 256)
    )
    return 100 * hits / len(feats)


def scores(
    kind: ProbeKind,
    key: str,
    classes: int,
    config: ProbeConfig,
    probe_clips: Split,
    test_clips: Split,
    held_out: int,
) -> str:
    """'fit % | held-out % | test %' of one probe fitted on all but the last ``held_out`` probe clips."""
    (feats, labels), (test_feats, test_labels) = probe_clips, test_clips
    fit, held = slice(0, len(feats) - held_out), slice(len(feats) - held_out, len(feats))
    probe = fit_probe(kind, feats[fit], labels[key][fit], classes, config, seed=1)
    parts = ((feats[fit], labels[key][fit]), (feats[held], labels[key][held]), (test_feats, test_labels[key]))
    return " | ".join(f"{accuracy(probe, f, y):.1f}" for f, y in parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--settings", nargs="+", required=True, help="schedule:steps:lr ...")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--held-out", type=int, default=256, help="probe clips held out of the fit")
    parser.add_argument("--features", type=Path, default=None, help="cache of the frozen features")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = rundir.existing(args.run)
    task, data = build(resolve(run.config, []))
    load_final_weights(task.model, run)
    base: ProbeConfig = task.probe_config
    print("| encoder | probe | label | schedule | steps | lr | fit % | held-out % | test % |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (probe_clips, test_clips) in features(task, data, args.features).items():
        for kind, key, setting in itertools.product(args.kinds, data.label_names, args.settings):
            schedule, steps, lr = setting.split(":")
            config = dataclasses.replace(base, schedule=schedule, steps=int(steps), lr=float(lr))
            config.average_lr = config.lr
            cells = scores(
                kind, key, len(data.label_names[key]), config, probe_clips, test_clips, args.held_out
            )
            print(f"| {name} | {kind} | {key} | {schedule} | {steps} | {lr} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
