"""The navigation AQT's attention on the depth point cloud (the thesis's HoloLens display, as images).

Each step of an episode: the view's pixels pushed out to their depth
(:meth:`attnlab.rl.navigation.NavigationEnv.depth_points`, the ceiling left out), each coloured by
the chosen action's cross-attention weight of the patch it lies in (blue low, red high, min-max
per step, :func:`attnlab.explain.point_render.attention_colours`), rendered by the point-cloud
renderer the PointPillars explanations use (:func:`attnlab.explain.point_render.render_points`)
from the robot's camera and from behind and above it (the robot a black post, the final goal a
green one). The episode's frames make a GIF; its first frame a PNG.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from attnlab.errors import AttnlabError
from attnlab.explain.point_render import Camera, attention_colours, render_points
from attnlab.files import atomic_write
from attnlab.models import create_model
from attnlab.rl.navigation import CEILING, NavigationEnv, make_navigation
from attnlab.rl.navigation_attention import action_attention

VIEW = (200, 200)  # width, height of each rendered view in pixels (square, as the robot's view)
BEHIND, ABOVE = 2.5, 5.0  # metres: the third-person camera behind the robot, above the 2.5 m walls
FRAME_MS = 400  # a GIF frame's duration


def pixel_weights(weights: np.ndarray, size: int) -> np.ndarray:
    """(g, g) patch weights -> (size, size): each pixel the weight of the patch it lies in."""
    grid = weights.shape[-1]
    index = np.arange(size) * grid // size  # (size,) each pixel row's (or column's) patch
    return weights[np.ix_(index, index)]


def robot_cameras(pos: np.ndarray, heading: float, height: float, fov: float) -> tuple[Camera, Camera]:
    """The robot's own camera, and one ``BEHIND`` metres behind it and ``ABOVE`` metres up (over
    the walls) looking down at the floor two metres ahead of it."""
    forward = np.array([math.cos(heading), math.sin(heading)])
    eye = (*pos.tolist(), height)
    ahead = (*(pos + forward).tolist(), height)
    own = Camera(eye, ahead, fov=fov, width=VIEW[0], height=VIEW[1])  # type: ignore[arg-type]
    behind = (*(pos - BEHIND * forward).tolist(), ABOVE)
    floor_ahead = (*(pos + 2 * forward).tolist(), 0.0)
    third = Camera(behind, floor_ahead, fov=90.0, width=VIEW[0], height=VIEW[1])  # type: ignore[arg-type]
    return own, third


def _post(xy: np.ndarray, top: float, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A vertical line of points at ``xy`` from the floor to ``top`` metres: (K, 3), (K, 3) uint8."""
    heights = np.linspace(0.0, top, 24)
    points = np.column_stack([np.full(24, xy[0]), np.full(24, xy[1]), heights])
    return points, np.tile(np.array(colour, dtype=np.uint8), (24, 1))


def cloud_frame(env: NavigationEnv, weights: np.ndarray) -> np.ndarray:
    """(VIEW height, 2 VIEW width + 4, 3) uint8: the depth points coloured by the (g, g) patch
    ``weights``, from the robot's camera (left) and from behind it (right)."""
    cloud, ids = env.depth_points()  # (H, W, 3), (H, W)
    keep = ids != CEILING
    values = pixel_weights(weights, ids.shape[0])[keep]
    points, colours = cloud[keep], attention_colours(torch.from_numpy(values.astype(np.float64)))
    batch, config = env.batch, env.config
    robot, goal = batch.pos[0], batch.goals[0, -1]
    own, third = robot_cameras(robot, float(batch.heading[0]), config.camera_height, config.fov_deg)
    extra = [_post(robot, config.camera_height, (0, 0, 0)), _post(goal, 1.0, (0, 160, 0))]
    scene = np.concatenate([points, *(p for p, _ in extra)])
    scene_colours = np.concatenate([colours, *(c for _, c in extra)])
    gap = np.full((VIEW[1], 4, 3), 255, dtype=np.uint8)
    return np.concatenate(
        [render_points(points, colours, own, dot=3), gap, render_points(scene, scene_colours, third)], axis=1
    )


def episode_clouds(
    model: nn.Module, env: NavigationEnv, folder: Path, *, seed: int, steps: int = 32
) -> dict[str, Path]:
    """Up to ``steps`` greedy steps of the episode ``seed``: ``attention_cloud.png`` (the first
    step) and ``attention_cloud.gif`` (every step) in ``folder``, by report caption."""
    obs, _ = env.reset(seed=seed)
    frames = []
    for _ in range(steps):
        maps, q = action_attention(model, obs)
        chosen = int(q.argmax())
        frames.append(cloud_frame(env, maps[chosen]))
        obs, _, terminated, truncated, _ = env.step(chosen)
        if terminated or truncated:
            break
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [Image.fromarray(frame) for frame in frames]
    png, gif = folder / "attention_cloud.png", folder / "attention_cloud.gif"
    atomic_write(png, lambda f: pictures[0].save(f, format="PNG"))
    atomic_write(
        gif,
        lambda f: pictures[0].save(
            f, format="GIF", save_all=True, append_images=pictures[1:], duration=FRAME_MS, loop=0
        ),
    )
    return {
        "The chosen action's attention on the depth points, from the robot's camera and from behind it "
        "(the robot black, the goal green; first test episode, first step)": png,
        f"The same over the episode's {len(frames)} steps (GIF)": gif,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m attnlab.rl.navigation_cloud RUN_DIR OUT [--seed N] [--steps N]``: the pictures of a
    finished aqt-nav or aqt_sketch-nav run (its model and environment from its config) in OUT."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=10_001)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args(argv)
    weights, config = args.run_dir / "model.safetensors", args.run_dir / "config.yaml"
    if not weights.is_file() or not config.is_file():
        raise SystemExit(f"no finished run at {args.run_dir} (model.safetensors or config.yaml is missing)")
    spec = yaml.safe_load(config.read_text())
    try:
        model = create_model(spec["model"]["name"])
        model.load_state_dict(load_file(weights))
        env = make_navigation(spec.get("dqn", {}).get("env", ""))
        pictures = episode_clouds(model, env, args.out, seed=args.seed, steps=args.steps)
    except AttnlabError as err:  # not a navigation run, or not an action-query model
        raise SystemExit(f"attnlab: error: {err}") from None
    for caption, path in pictures.items():
        print(f"{path}: {caption}")


if __name__ == "__main__":
    main()
