"""docs/rl_navigation.md's one-scene test: the thesis's 10 fixed sketches (4 equal, 2 unequal, 4
curves) in one scene, from the runs' evaluations, and the picture of both agents on them.

    python scripts/sketch_scene.py RUNS_DIR OUT.png

RUNS_DIR holds ``aqt_sketch-nav-s<seed>`` and ``cnn_sketch-nav-s<seed>`` run folders, each evaluated
by ``attnlab evaluate RUN`` (their newest ``evaluations/final-*.json`` carry ``test/scene_*``). Prints
the ADE / FDE table (mean ± sd over seeds) and draws seed 0's agents with the scripted policy.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from attnlab.models import create_model
from attnlab.rl.envs import Policy
from attnlab.rl.navigation import make_navigation
from attnlab.rl.navigation_sketch import scene_test, scripted_policy, sketch_episodes, trajectories_figure

KINDS = ("equal", "unequal", "curve", "")
NAMES = {"equal": "equal spacing (4)", "unequal": "unequal spacing (2)", "curve": "curves (4)",
         "": "**average (10)**"}  # fmt: skip


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def newest_evaluation(run: Path) -> dict[str, float]:
    found = sorted((run / "evaluations").glob("final-*.json"))
    if not found:
        raise SystemExit(f"{run} has no evaluation: attnlab evaluate {run}")
    return json.loads(found[-1].read_text())


def cell(runs: list[dict[str, float]], prefix: str, kind: str) -> str:
    suffix = f"_{kind}" if kind else ""
    ade = [r[f"test/scene_{prefix}ade{suffix}"] for r in runs]
    fde = [r[f"test/scene_{prefix}fde{suffix}"] for r in runs]
    return f"{spread(ade)} / {spread(fde)}"


def greedy(run: Path) -> Policy:
    spec = yaml.safe_load((run / "config.yaml").read_text())
    model = create_model(spec["model"]["name"])
    model.load_state_dict(load_file(run / "model.safetensors"))
    model.eval()

    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(model(torch.as_tensor(obs, dtype=torch.float32)[None]).q_values.argmax(1))

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    found = {
        name: [newest_evaluation(r) for r in sorted(args.runs.glob(f"{name}-s[0-9]"))]
        for name in ("cnn_sketch-nav", "aqt_sketch-nav")
    }
    print("| sketch kind | random policy (floor) | scripted | cnn_sketch-nav | aqt_sketch-nav |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in KINDS:
        row = [cell(found["aqt_sketch-nav"], p, kind) for p in ("random_policy_", "scripted_")]
        row += [cell(found[name], "", kind) for name in ("cnn_sketch-nav", "aqt_sketch-nav")]
        print(f"| {NAMES[kind]} | {' | '.join(row)} |")
    print(f"seeds: {', '.join(f'{k} {len(v)}' for k, v in found.items())}")
    spec = yaml.safe_load((args.runs / "aqt_sketch-nav-s0" / "config.yaml").read_text())
    config, seeds = scene_test(make_navigation(spec["dqn"]["env"]).config)
    policies = {
        "AQT (seed 0)": greedy(args.runs / "aqt_sketch-nav-s0"),
        "CNN (seed 0)": greedy(args.runs / "cnn_sketch-nav-s0"),
        "scripted": scripted_policy(config),
    }
    runs = {name: sketch_episodes(config, policy, seeds) for name, policy in policies.items()}
    print(trajectories_figure(runs, args.out, columns=5))


if __name__ == "__main__":
    main()
