"""The navigation simulator and the navigation Q-networks: steps/s and forward/backward times.

    python benchmarks/rl_navigation.py                  # 64 environments, 84x84, one thread
    python benchmarks/rl_navigation.py --num-envs 256

Cases (interleaved repeats, medians, peak memory from the harness):
1. ``envs``: ``steps`` steps of random actions for ``num_envs`` environments: our batch
   (:class:`~attnlab.rl.navigation.NavigationBatch`, one numpy call per step, auto-reset) against
   gymnasium's ``SyncVectorEnv`` over single :class:`~attnlab.rl.navigation.NavigationEnv`\\ s
   (``gym.make``, the usual wrappers). Steps/s = ``num_envs * steps / median seconds``.
2. ``train``: one DQN update's work (online forward + backward, target and Double-DQN forwards,
   Adam step) on a batch of ``batch`` transitions, aqt-nav against cnn_dqn-nav.
3. ``act``: one greedy forward on a single observation (what the DQN loop does per step).
4. ``loop``: per 4 environment steps of the DQN runner (the recipes' ``train_every``): 4 single-env
   steps, 4 acting forwards, 1 aqt-nav update, so where the time goes shows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from attnlab.models import create_model
from attnlab.rl.navigation import make_navigation, make_navigation_batch
from benchmarks.harness import device_info, measure, report

ENV = "attnlab/Nav-v0"


def env_cases(num_envs: int, steps: int, repeats: int) -> list:  # type: ignore[type-arg]
    ours = make_navigation_batch(ENV, num_envs, 0)
    ours.reset()
    theirs = gym.vector.SyncVectorEnv([lambda: gym.make(ENV) for _ in range(num_envs)])
    theirs.reset(seed=0)
    actions = np.random.default_rng(0).integers(4, size=(steps, num_envs))

    def step_ours() -> None:
        for a in actions:
            ours.step(a, autoreset=True)

    def step_theirs() -> None:
        for a in actions:
            theirs.step(a)

    cpu = torch.device("cpu")
    return measure(
        "envs",
        {"ours (batch)": step_ours, "gym-sync": step_theirs},
        baseline="gym-sync",
        device=cpu,
        repeats=repeats,
    )


def cpu_steps_per_second(num_envs: int, steps: int) -> tuple[float, float]:
    """Steps per second of CPU time (this process's, one thread), ours and gym's sync vector env:
    the per-core rate, which a machine shared with other work does not change as it changes wall time."""
    ours = make_navigation_batch(ENV, num_envs, 0)
    ours.reset()
    theirs = gym.vector.SyncVectorEnv([lambda: gym.make(ENV) for _ in range(num_envs)])
    theirs.reset(seed=0)
    actions = np.random.default_rng(0).integers(4, size=(steps, num_envs))
    rates = []
    for step in (lambda a: ours.step(a, autoreset=True), theirs.step):
        start = time.process_time()
        for a in actions:
            step(a)
        rates.append(num_envs * steps / (time.process_time() - start))
    return rates[0], rates[1]


def update_fn(name: str, batch: int):  # type: ignore[no-untyped-def]
    model, target = create_model(name), create_model(name).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    obs = model.example_inputs(batch)["obs"]
    actions = torch.randint(4, (batch,))

    def update() -> None:
        q = model(obs).q_values.gather(1, actions[:, None])[:, 0]
        with torch.no_grad():
            next_a = model(obs).q_values.argmax(1, keepdim=True)
            target_q = target(obs).q_values.gather(1, next_a)[:, 0]
        loss = torch.nn.functional.smooth_l1_loss(q, target_q)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one = obs[:1]

    @torch.no_grad()
    def act() -> None:
        model(one)

    return update, act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rl_navigation.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    results = env_cases(args.num_envs, args.steps, args.repeats)
    aqt_update, aqt_act = update_fn("aqt-nav", args.batch)
    cnn_update, cnn_act = update_fn("cnn_dqn-nav", args.batch)
    results += measure(
        "train",
        {"aqt-nav": aqt_update, "cnn_dqn-nav": cnn_update},
        baseline="cnn_dqn-nav",
        device=cpu,
        repeats=args.repeats,
    )
    results += measure(
        "act",
        {"aqt-nav": aqt_act, "cnn_dqn-nav": cnn_act},
        baseline="cnn_dqn-nav",
        device=cpu,
        repeats=args.repeats,
    )
    single = make_navigation(ENV)
    single.reset(seed=0)
    rng = np.random.default_rng(1)

    def env_steps() -> None:
        for _ in range(4):
            _, _, terminated, truncated, _ = single.step(int(rng.integers(4)))
            if terminated or truncated:
                single.reset()

    def acts() -> None:
        for _ in range(4):
            aqt_act()

    results += measure(
        "loop",
        {"4 env steps": env_steps, "4 acting forwards": acts, "1 update": aqt_update},
        baseline="4 env steps",
        device=cpu,
        repeats=args.repeats,
    )
    ours_cpu, gym_cpu = cpu_steps_per_second(args.num_envs, 4 * args.steps)
    print(f"envs  per CPU-second (one core): ours {ours_cpu:.0f} steps/s, gym-sync {gym_cpu:.0f} steps/s")
    for r in results:
        if r.case == "envs":
            print(f"envs  {r.variant:14s} {args.num_envs * args.steps / (r.median_ms / 1e3):10.0f} steps/s")
    info = device_info(cpu) | {
        "env": ENV,
        "num_envs": args.num_envs,
        "steps": args.steps,
        "batch": args.batch,
    }
    report("navigation simulator and Q-networks", results, info, args.out)


if __name__ == "__main__":
    main()
