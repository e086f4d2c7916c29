"""PPO's loop: environment steps against network work.

    python benchmarks/rl_ppo.py                      # MiniGrid DoorKey-5x5, 8 environments
    python benchmarks/rl_ppo.py --env ALE/Breakout-v5

Cases (interleaved repeats, medians, peak memory from the harness):
1. ``envs``: ``steps`` vectorised steps of random actions with our replayable
   :class:`~attnlab.rl.vector.SeededVectorEnv` against gymnasium's ``SyncVectorEnv`` over the same
   environments (both step them in turn in one process); on Atari also ale-py's own
   ``AtariVectorEnv`` (C++, its own threads; the same preprocessing: sticky actions 0.25, frame skip
   4 with the last two frames max-pooled, 84x84 grey, 4 stacked, 18,000 frames an episode, no
   no-op starts) with 1 and 2 threads.
2. ``loop``: one rollout's environment steps against the same number of policy forward passes and
   one PPO update (4 epochs x 4 minibatches, the recipes' settings) of a transition-RND agent, so
   the fraction of time in the environment against the network shows.
Samples per second = ``num_envs * steps / median seconds``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from attnlab.recipes import recipe_path
from attnlab.rl.ppo import _Agent, env_kind
from attnlab.rl.vector import SeededVectorEnv
from attnlab.runs.spec import resolve
from benchmarks.harness import device_info, measure, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rl_ppo.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    kind = env_kind(args.env)
    ours = SeededVectorEnv(kind.make, args.num_envs, 0, None)
    theirs = gym.vector.SyncVectorEnv([kind.make for _ in range(args.num_envs)])
    theirs.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(int(ours.action_space.n), size=(args.steps, args.num_envs))  # type: ignore[attr-defined]

    def step_ours() -> None:
        for a in actions:
            ours.step(a)

    def step_theirs() -> None:
        for a in actions:
            theirs.step(a)

    cpu = torch.device("cpu")
    variants = {"ours": step_ours, "gym-sync": step_theirs}
    if kind.frames:
        variants |= {
            f"ale-py vector, {n} thread(s)": ale_vector(args.env, args.num_envs, n, actions) for n in (1, 2)
        }
    results = measure("envs", variants, baseline="gym-sync", device=cpu, repeats=args.repeats)
    recipe = "trnd-montezuma" if kind.frames else "trnd-minigrid"
    overrides = [
        "--ppo.env",
        args.env,
        "--ppo.num_envs",
        str(args.num_envs),
        "--ppo.num_steps",
        str(args.steps),
    ]
    overrides += ["--trainer.accelerator", "cpu", "--ppo.minibatches", "4"]
    if kind.frames:
        overrides += ["--model.num_actions", str(int(ours.action_space.n))]  # type: ignore[attr-defined]
    agent = _Agent(resolve(recipe_path(recipe), overrides))
    obs = torch.tensor(ours.obs)

    @torch.no_grad()
    def forward() -> None:
        for _ in range(args.steps):
            agent.model(obs)

    rollout = agent.collect(_NullWriter())  # type: ignore[arg-type]

    def update() -> None:
        agent.update(rollout)

    results += measure(
        "loop",
        {"env steps": step_ours, "policy forwards": forward, "update": update},
        baseline="env steps",
        device=cpu,
        repeats=args.repeats,
    )
    samples = args.num_envs * args.steps
    for r in results:
        print(f"{r.case:5s} {r.variant:16s} {samples / (r.median_ms / 1e3):10.0f} samples/s")
    info = device_info(cpu) | {"env": args.env, "num_envs": args.num_envs, "steps": args.steps}
    report("PPO loop", results, info, args.out)


def ale_vector(env_id: str, num_envs: int, threads: int, actions: np.ndarray) -> Callable[[], None]:
    """ale-py's ``AtariVectorEnv`` with :mod:`attnlab.rl.atari_envs`' preprocessing, stepping
    ``actions`` (steps, num_envs)."""
    from ale_py.vector_env import AtariVectorEnv

    from attnlab.rl.atari_envs import FRAME_SKIP, MAX_FRAMES, SIZE, STACK

    game = env_id.removeprefix("ALE/").removesuffix("-v5")
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in game).lstrip("_")  # MontezumaRevenge
    env = AtariVectorEnv(
        snake, num_envs, num_threads=threads, repeat_action_probability=0.25, frameskip=FRAME_SKIP,
        maxpool=True, img_height=SIZE, img_width=SIZE, grayscale=True, stack_num=STACK, noop_max=0,
        max_num_frames_per_episode=MAX_FRAMES, reward_clipping=False, use_fire_reset=False,
    )  # fmt: skip
    env.reset(seed=0)

    def step() -> None:
        for a in actions:
            env.step(a)

    return step


class _NullWriter:
    def add_scalar(self, tag: str, value: float, step: int) -> None:
        pass


if __name__ == "__main__":
    main()
