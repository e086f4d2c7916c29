"""Where the navigation AQT looks, per action: the decoder's cross-attention of each action query
over the 12x12 patches of the view (heads averaged, as the official AQT's pictures), pictures of an
episode with all four actions side by side (the chosen one framed, Q-values printed), and the
theses' check of meaning that moving the goal moves the attention.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.rl.navigation import ACTION_NAMES, NavigationEnv, make_navigation

CROSS = "decoder.layers.0.cross_attn"


def action_attention(model: nn.Module, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One observation (obs_dim,) -> per-action maps (A, grid, grid) (heads averaged) and Q-values (A,)."""
    grid = getattr(getattr(model, "config", None), "grid", None)
    if grid is None:
        raise InputError(f"action attention needs an aqt-nav model, got {type(model).__name__}")
    model.eval()
    with torch.no_grad(), capture(model, layers=[CROSS]) as rec:
        q = model(torch.as_tensor(obs, dtype=torch.float32)[None]).q_values[0]
    maps = rec[CROSS][0].mean(dim=0)  # (A, grid^2): heads averaged
    return maps.view(-1, grid, grid).numpy(), q.numpy()


def with_goal_bearing(obs: np.ndarray, bearing: float) -> np.ndarray:
    """The same view with the goal moved to ``bearing`` (radians, left positive), same distance."""
    out = obs.copy()
    out[-2:] = [math.sin(bearing), math.cos(bearing)]
    return out


def attention_centre_x(maps: np.ndarray) -> np.ndarray:
    """Horizontal centre of mass of each map (A, g, g) in [0, 1] (0: left edge of the view)."""
    g = maps.shape[-1]
    cols = (np.arange(g) + 0.5) / g
    return (maps.sum(axis=1) * cols).sum(axis=-1) / maps.sum(axis=(1, 2))


def episode_figure(model: nn.Module, env: NavigationEnv, path: Path, *, seed: int, frames: int = 4) -> Path:
    """Greedy steps of one episode: per row the view and the four actions' attention over it."""
    obs, _ = env.reset(seed=seed)
    fig, axes = plt.subplots(frames, 5, figsize=(12.5, 2.6 * frames), squeeze=False)
    for row in range(frames):
        maps, q = action_attention(model, obs)
        chosen = int(q.argmax())
        view = env.render()
        axes[row, 0].imshow(view)
        axes[row, 0].set_title(f"step {row}: view", fontsize=9)
        for a, name in enumerate(ACTION_NAMES):
            ax = axes[row, a + 1]
            ax.imshow(view)
            ax.imshow(maps[a], cmap="jet", alpha=0.5, extent=(0, view.shape[1], view.shape[0], 0))
            ax.set_title(f"{name}  Q={q[a]:.2f}" + ("  (chosen)" if a == chosen else ""), fontsize=9)
            if a == chosen:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(3)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        obs, _, terminated, truncated, _ = env.step(chosen)
        if terminated or truncated:
            break
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def meaning_checks(model: nn.Module, env: NavigationEnv, seeds: range) -> dict[str, float]:
    """The theses' two checks on the first view of each seed's episode: the goal moved from 45 deg
    left-front to 45 deg right-front (same distance) moves the attention's horizontal centre; the
    turn-left query looks further left than the turn-right one; and Q(left) - Q(right) follows the goal.
    """
    left, right, turn_left, turn_right, q_left, q_right = [], [], [], [], [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        maps_l, q_l = action_attention(model, with_goal_bearing(obs, math.radians(45)))
        maps_r, q_r = action_attention(model, with_goal_bearing(obs, math.radians(-45)))
        left.append(attention_centre_x(maps_l).mean())
        right.append(attention_centre_x(maps_r).mean())
        centres = attention_centre_x(action_attention(model, obs)[0])
        turn_left.append(centres[2])
        turn_right.append(centres[3])
        q_left.append(q_l[2] - q_l[3])
        q_right.append(q_r[2] - q_r[3])
    return {
        "centre_x_goal_left": float(np.mean(left)),
        "centre_x_goal_right": float(np.mean(right)),
        "fraction_moving_left": float(np.mean(np.array(left) < np.array(right))),
        "centre_x_turn_left_query": float(np.mean(turn_left)),
        "centre_x_turn_right_query": float(np.mean(turn_right)),
        "q_left_minus_right_goal_left": float(np.mean(q_left)),
        "q_left_minus_right_goal_right": float(np.mean(q_right)),
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m attnlab.rl.navigation_attention RUN_DIR [--figure PATH]``: the checks of meaning
    of a finished aqt-nav run on 100 fresh layouts, and an episode's per-action figure."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--env", default="attnlab/Nav-v0")
    args = parser.parse_args(argv)
    weights = args.run_dir / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"no finished run at {args.run_dir} (model.safetensors is missing)")
    model = create_model("aqt-nav")
    model.load_state_dict(load_file(weights))
    env = make_navigation(args.env)
    print(json.dumps(meaning_checks(model, env, range(10_000, 10_100)), indent=1))
    if args.figure is not None:
        print(episode_figure(model, env, args.figure, seed=10_001))


if __name__ == "__main__":
    main()
