"""The sketch-instructed navigation test (seed 004's second thesis): ADE / FDE per sketch kind for any
policy, a straight-to-waypoint scripted policy to measure beside the agent, and a picture of the
trajectories.

The thesis evaluates 10 sketches (4 equally spaced, 2 unequally spaced, 4 curves) and reports ADE and
FDE per kind and their average over the 10. A "mixed" test here splits its episodes over the kinds
4 : 2 : 4, each kind on its own fixed seeds, so that the mean over all episodes weights the kinds as
the thesis's average row does. ADE / FDE: :func:`attnlab.rl.navigation.displacement_errors` of the
trajectory (the start, then the position after every step) against the sketch's waypoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from attnlab.rl.envs import Policy
from attnlab.rl.navigation import GOAL_FEATURES, NavConfig, NavigationEnv, displacement_errors

THESIS_SKETCHES = {"equal": 4, "unequal": 2, "curve": 4}  # the thesis's 10 sketches by kind
SCENE_SEED = 4  # the layout of the one-scene test (seed 004's thesis tests its 10 sketches in one scene)
SCENE_SKETCH_SEEDS = 900_000  # the 10 sketches' seeds start here
STOP, FORWARD, LEFT, RIGHT = range(4)


@dataclass
class SketchEpisode:
    kind: str  # equal | unequal | curve | file
    waypoints: np.ndarray  # (K, 2) metres
    trajectory: np.ndarray  # (T + 1, 2) metres: the start, then the position after every step
    segments: np.ndarray  # (S, 4) the layout's walls and boxes, for pictures
    episode_return: float
    collisions: int

    def errors(self) -> tuple[float, float]:
        """(ADE, FDE) in metres."""
        return displacement_errors(self.trajectory, self.waypoints)


def scripted_policy(config: NavConfig) -> Policy:
    """Straight to the step's waypoint, from the observation's goal features: stop (and wait for the
    next one) once one more step would overshoot it, else turn towards it while its bearing is more
    than half a turn off, else forward."""
    half_turn = math.radians(config.turn_deg) / 2

    def act(obs: np.ndarray) -> int:
        distance, sin, cos = obs[-GOAL_FEATURES:]
        distance, bearing = float(distance) * config.map_size, math.atan2(float(sin), float(cos))
        if distance <= config.forward_m / 2:
            return STOP
        if abs(bearing) > half_turn:
            return LEFT if bearing > 0 else RIGHT
        return FORWARD

    return act


def sketch_episode(env: NavigationEnv, policy: Policy, seed: int) -> SketchEpisode:
    """One episode of ``env`` on ``seed`` with ``policy`` acting, and the robot's trajectory."""
    obs, _ = env.reset(seed=seed)
    batch = env.batch
    positions, total, done, info = [batch.pos[0].copy()], 0.0, False, {"collisions": 0}
    waypoints, segments, kind = batch.goals[0].copy(), batch.segments[0].copy(), batch.kinds[0]
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        positions.append(batch.pos[0].copy())
        total, done = total + reward, terminated or truncated
    return SketchEpisode(kind, waypoints, np.array(positions), segments, total, int(info["collisions"]))


def kind_seeds(config: NavConfig, seeds: Sequence[int]) -> dict[str, list[int]]:
    """The test seeds by sketch kind: split 4 : 2 : 4 for "mixed", all to the one kind otherwise."""
    if config.sketch != "mixed":
        return {config.sketch: list(seeds)}
    shares, out, start, cumulative = sum(THESIS_SKETCHES.values()), {}, 0, 0
    for kind, share in THESIS_SKETCHES.items():
        cumulative += share
        end = round(len(seeds) * cumulative / shares)
        if end > start:  # a kind with no seed (fewer than 3 in all) is left out, not reported as NaN
            out[kind] = list(seeds[start:end])
        start = end
    return out


def scene_test(config: NavConfig) -> tuple[NavConfig, dict[str, list[int]]]:
    """The thesis's test: 10 fixed sketches (4 equally spaced, 2 unequally spaced, 4 curves) in one
    fixed scene; the configuration that draws every episode in that scene and each kind's seeds."""
    seeds, start = {}, SCENE_SKETCH_SEEDS
    for kind, count in THESIS_SKETCHES.items():
        seeds[kind], start = list(range(start, start + count)), start + count
    return replace(config, scene_seed=SCENE_SEED), seeds


def sketch_episodes(config: NavConfig, policy: Policy, seeds: dict[str, list[int]]) -> list[SketchEpisode]:
    """One episode per seed of each kind (:func:`kind_seeds`), on an environment that draws only that kind."""
    episodes = []
    for kind, chosen in seeds.items():
        env = NavigationEnv(replace(config, sketch=kind))
        episodes += [sketch_episode(env, policy, seed) for seed in chosen]
    return episodes


def displacement_metrics(episodes: Sequence[SketchEpisode], prefix: str) -> dict[str, float]:
    """Mean ADE and FDE per kind (``{prefix}ade_{kind}``) and over all episodes (``{prefix}ade``)."""
    errors = np.array([e.errors() for e in episodes])  # (E, 2)
    kinds = np.array([e.kind for e in episodes])
    out = {f"{prefix}ade": float(errors[:, 0].mean()), f"{prefix}fde": float(errors[:, 1].mean())}
    for kind in dict.fromkeys(kinds.tolist()):
        ade, fde = errors[kinds == kind].mean(axis=0)
        out |= {f"{prefix}ade_{kind}": float(ade), f"{prefix}fde_{kind}": float(fde)}
    return out


def trajectories_figure(runs: dict[str, list[SketchEpisode]], path: Path, columns: int = 5) -> Path:
    """One panel per episode of the first policy, ``columns`` to a row: the layout, the sketch's
    waypoints and every policy's trajectory on it, ADE / FDE in the legend."""
    first = next(iter(runs.values()))
    cols = min(columns, len(first))
    rows = math.ceil(len(first) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows), squeeze=False)
    for ax in axes.flat[len(first) :]:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[: len(first)]):
        episode = first[i]
        for x0, y0, x1, y1 in episode.segments:
            ax.plot([x0, x1], [y0, y1], color="0.4", lw=1.5)
        ax.plot(*episode.waypoints.T, "k.--", ms=9, lw=0.8, label="sketch (waypoints)")
        ax.plot(*episode.trajectory[0], "k^", ms=9, label="start")
        for name, episodes in runs.items():
            ade, fde = episodes[i].errors()
            label = f"{name}: ADE {ade:.2f}, FDE {fde:.2f}"
            ax.plot(*episodes[i].trajectory.T, lw=1.6, alpha=0.85, label=label)
        ax.set_title(f"{episode.kind} sketch")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
