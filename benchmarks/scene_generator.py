"""CLEVRER-lite generator throughput on one CPU core.

    python -m benchmarks.scene_generator
    python -m benchmarks.scene_generator --repeats 5 --videos 16

Cases (median of interleaved repeats, one thread, the process pinned to one core):
1. rendering: the shown frames of a few prepared scenes at 64x64 (and 96x64, 128x128),
   as frames/s. Target: at least 200 frames/s at 64x64.
2. physics: simulating those scenes (shown + held-back frames), as simulated frames/s
   and the equivalent sub-steps/s (a quiet frame is one exact step, see physics.py);
   and sampling a scene (initial conditions, simulation, re-sampling), as scenes/s.
3. questions: every question candidate of a scene (with its counterfactual
   re-simulations), as scenes/s.
4. end to end: ``generate_dataset`` with one worker (sampling, rendering, questions,
   balancing, writing mp4 + annotation JSON + masks npz + question JSON), as videos/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import torch

from attnlab.data.clevrer_lite import (
    ClevrerLiteConfig,
    generate_dataset,
    make_scene,
    render_scene,
    scene_candidates,
    simulate,
)
from benchmarks.harness import Result, device_info, measure, report

SEED = 0


def _one_core() -> None:
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def render_case(config: ClevrerLiteConfig, scenes: int, repeats: int) -> list[Result]:
    made = [make_scene(config, SEED, i) for i in range(scenes)]
    frames = scenes * config.num_frames

    def run() -> object:
        return [render_scene(config, s) for s in made]

    case = f"render {config.width}x{config.height}, {scenes} videos x {config.num_frames} frames"
    results = measure(case, {"render": run}, baseline="render", device=torch.device("cpu"), repeats=repeats)
    for r in results:
        r.case += f" ({frames / r.median_ms * 1e3:.0f} frames/s)"
    return results


def physics_cases(config: ClevrerLiteConfig, scenes: int, repeats: int) -> list[Result]:
    made = [make_scene(config, SEED, i) for i in range(scenes)]
    total = config.num_frames + config.predict_frames

    def run() -> object:
        return [simulate(s.initial, total, config.fps, config.physics) for s in made]

    def sample() -> object:
        return [make_scene(config, SEED + 1, i) for i in range(scenes)]

    def ask() -> object:
        return [scene_candidates(config, s, SEED) for s in made]

    cpu = torch.device("cpu")
    results = measure(
        f"simulate {scenes} scenes x {total} frames",
        {"simulate": run},
        baseline="simulate",
        device=cpu,
        repeats=repeats,
    )
    steps = scenes * total * config.physics.substeps
    for r in results:
        per_s = 1e3 / r.median_ms
        r.case += f" ({scenes * total * per_s:.0f} frames/s, {steps * per_s:.0f} sub-steps/s)"
    sampled = measure(
        f"sample {scenes} scenes", {"make_scene": sample}, baseline="make_scene", device=cpu, repeats=repeats
    )
    asked = measure(
        f"questions of {scenes} scenes",
        {"candidates": ask},
        baseline="candidates",
        device=cpu,
        repeats=repeats,
    )
    for r in sampled + asked:
        r.case += f" ({scenes / r.median_ms * 1e3:.1f} scenes/s)"
    return results + sampled + asked


def end_to_end_case(config: ClevrerLiteConfig, videos: int, repeats: int) -> list[Result]:
    scratch = Path(tempfile.mkdtemp(prefix="clevrer_lite_bench_"))
    runs = iter(range(10**6))

    def run() -> object:
        out = scratch / str(next(runs))  # a fresh folder: a finished one would be left alone
        summary = generate_dataset(config, out, videos, seed=SEED, workers=1, progress=False)
        shutil.rmtree(out)
        return summary

    try:
        case = f"generate_dataset {videos} videos, 1 worker"
        results = measure(
            case,
            {"end to end": run},
            baseline="end to end",
            device=torch.device("cpu"),
            repeats=repeats,
            warmup=1,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for r in results:
        r.case += f" ({videos / r.median_ms * 1e3:.1f} videos/s)"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scene_generator.json"))
    args = parser.parse_args()
    _one_core()
    config = ClevrerLiteConfig()
    results = render_case(config, args.scenes, args.repeats)
    for width, height in ((96, 64), (128, 128)):
        results += render_case(
            dataclasses.replace(config, width=width, height=height), args.scenes, args.repeats
        )
    results += physics_cases(config, args.scenes, args.repeats)
    results += end_to_end_case(config, args.videos, max(3, args.repeats // 2))
    info = device_info(torch.device("cpu")) | {"pinned_cores": sorted(os.sched_getaffinity(0))}
    report("CLEVRER-lite generator, one CPU core", results, info, args.out)


if __name__ == "__main__":
    main()
