"""Does a trained aqt-breakout network's output depend on the frames? For each run: on 20 stacks of
frames from a random-policy episode (every 20th step), the greedy Q-values' spread over the states
(eval mode: noise off), how often the greedy action is the same, and the convolutional torso's
output, std over states against the learned positions it is added to (``pos + 0.1 * src``),
beside a freshly initialised network of the same recipe.

    PYTHONPATH=src python scripts/aqt_breakout_probe.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from attnlab.models.rl.aqt import ActionQTransformer, AQTConfig
from attnlab.rl.atari_envs import make_atari


def frames(count: int = 20, every: int = 20) -> torch.Tensor:
    """(count, 4, 84, 84) in [0, 1]: a random policy's stacks, every ``every``-th step."""
    env, rng, out = make_atari("ALE/Breakout-v5"), np.random.default_rng(0), []
    obs, _ = env.reset(seed=3)
    for step in range(count * every):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if step % every == 0:
            out.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return torch.as_tensor(np.stack(out), dtype=torch.float32) / 255.0


def probe(model: ActionQTransformer, x: torch.Tensor) -> str:
    model.eval()
    with torch.no_grad():
        q = model(x).q_values  # (N, A)
        src = model.convs(x).flatten(2).transpose(1, 2)  # (N, 49, d)
    same = (q.argmax(1) == q.argmax(1).mode().values).float().mean().item()
    return (
        f"Q spread over states {q.std(0).mean():.2e}, over actions {q.std(1).mean():.2e}; "
        f"same greedy action {same:.0%}; 0.1 x torso std over states {0.1 * src.std(0).mean():.1e}, "
        f"|positions| {model.positions().abs().mean():.3f}"
    )


def main() -> None:
    x = frames()
    torch.manual_seed(0)
    print("untrained:", probe(ActionQTransformer(AQTConfig(num_actions=4)), x))
    for run in map(Path, sys.argv[1:]):
        model = ActionQTransformer(AQTConfig(num_actions=4))
        model.load_state_dict(load_file(run / "model.safetensors"))
        print(f"{run.name}:", probe(model, x))


if __name__ == "__main__":
    main()
