"""Where aqt-breakout's time goes on a CPU: per 4 agent steps of the DQN runner (the recipe's
``train_every``), 4 Atari steps (ALE, frame skip 4, resize), 4 acting forwards of the noisy AQT on
one stack of frames, and 1 Rainbow update; and the replay part of an update, prioritised (tree draw,
gather, priority update) against uniform (gather only).

    PYTHONPATH=src:. python -m benchmarks.aqt_breakout [--repeats 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from attnlab.models.rl.aqt import ActionQTransformer, AQTConfig
from attnlab.objectives.categorical_dqn import categorical_loss
from attnlab.rl.atari_envs import make_atari
from attnlab.rl.navigation_replay import ByteReplayBuffer
from attnlab.rl.prioritized import PrioritySampler
from benchmarks.harness import device_info, measure, report

FRAMES = 4 * 84 * 84


def filled_replay(size: int, rng: np.random.Generator) -> tuple[ByteReplayBuffer, PrioritySampler]:
    buffer, priorities = ByteReplayBuffer(size, FRAMES, FRAMES), PrioritySampler(size, alpha=0.5)
    for _ in range(size):
        obs = rng.integers(0, 256, FRAMES).astype(np.float32)
        priorities.add(buffer.add(obs, 0, 0.0, obs, False, 3))
    return buffer, priorities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--replay", type=int, default=2000, help="transitions in the replay of the replay case"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/aqt_breakout.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu, rng = torch.device("cpu"), np.random.default_rng(0)
    model, target = ActionQTransformer(AQTConfig(num_actions=4)), ActionQTransformer(AQTConfig(num_actions=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=6.25e-5, eps=1.5e-4)
    env = make_atari("ALE/Breakout-v5")
    obs, _ = env.reset(seed=0)
    buffer, priorities = filled_replay(args.replay, rng)

    def env_steps() -> None:
        for _ in range(4):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
            if terminated or truncated:
                env.reset()

    one = torch.as_tensor(obs, dtype=torch.float32)[None] / 255.0

    @torch.no_grad()
    def acts() -> None:
        model.reset_noise()
        for _ in range(4):
            model(one).q_values.argmax()

    def prioritised() -> None:
        slots, _ = priorities.sample(32, len(buffer), 0.4, rng)
        buffer.gather(slots)
        priorities.update(slots, torch.rand(32))

    def uniform() -> None:
        buffer.sample(32, rng)

    batch = buffer.gather(torch.arange(32))
    frames, actions = batch.obs.view(32, 4, 84, 84) / 255.0, batch.actions

    def update() -> None:
        out = model(frames)
        with torch.no_grad():
            target.reset_noise()
            nxt, online = target(frames), model(frames).q_values
        loss = categorical_loss(
            out.log_probs, actions, batch.rewards, batch.terminated, nxt.probs, model.support,
            gamma=0.99, online_next_q_values=online, horizons=batch.horizons,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        optimizer.step()

    results = measure(
        "loop",
        {"4 Atari steps": env_steps, "4 acting forwards": acts, "1 Rainbow update": update},
        baseline="4 Atari steps",
        device=cpu,
        repeats=args.repeats,
    )
    results += measure(
        "replay",
        {"prioritised": prioritised, "uniform": uniform},
        baseline="uniform",
        device=cpu,
        repeats=args.repeats,
    )
    report("aqt-breakout's training loop", results, device_info(cpu) | {"replay": args.replay}, args.out)


if __name__ == "__main__":
    main()
