"""``runner: dqn``: deep Q-learning (Mnih et al., Nature 2015) on a gymnasium environment.

Implementation details, following CleanRL's ``dqn.py``
(https://github.com/vwxyzjn/cleanrl/blob/master/cleanrl/dqn.py):

1. One environment; ``trainer.max_steps`` counts environment steps.
2. Epsilon-greedy exploration, epsilon linear from ``start_epsilon`` to ``end_epsilon`` over
   ``exploration_fraction`` of the steps, then constant.
3. A uniform replay buffer of the last ``buffer_size`` transitions; no updates during the
   first ``learning_starts`` steps; then one update of ``batch_size`` transitions every
   ``train_every`` steps.
4. A target network, set to the online one (``tau = 1``) or moved towards it (``tau < 1``)
   every ``target_sync_every`` steps; TD loss in :func:`attnlab.objectives.dqn.td_loss`.
5. A time limit (truncation) bootstraps; only a terminal state cuts the return.
6. Validation every ``trainer.val_every`` steps and the test at the end: ``eval_episodes``
   greedy episodes on a separate environment with fixed seeds; the test also runs a
   uniformly random policy on the same seeds (the floor row of the report).
7. On attnlab's navigation simulator (``attnlab/Nav*`` ids, :mod:`attnlab.rl.navigation`) the test
   also reports success rate, collisions and episode length of both policies; ``replay_byte_dim``
   keeps the leading observation entries (the view's class ids) as uint8 in the replay buffer.
8. In the simulator's sketch mode (``attnlab/NavSketch*``) the test reports ADE / FDE per sketch kind
   (:mod:`attnlab.rl.navigation_sketch`) for the greedy agent, the random policy and a scripted
   straight-to-waypoint policy on the same seeds, and the report draws their trajectories.

Rainbow's parts (Hessel et al. 2018, arXiv:1710.02298; reference: Kaixhin/Rainbow), each a field:
``n_step`` returns (:mod:`attnlab.rl.nstep`), ``prioritized`` replay with ``priority_alpha`` and
``priority_beta`` annealed to 1 over the run (:mod:`attnlab.rl.prioritized`), the categorical
``loss`` of a distributional Q-network (:mod:`attnlab.objectives.categorical_dqn`), and noisy
nets: a model with ``reset_noise`` (noisy layers) draws new noise for the online network every
``train_every`` steps before it acts, and for the target network before each target (set the
epsilons to 0: the noise explores). Atari frames (``ALE/<Game>-v5``, :mod:`attnlab.rl.atari_envs`)
are stored as bytes and scaled to [0, 1]; ``clip_reward`` clips the rewards learnt from to [-1, 1].

Deviations: evaluation is greedy by default (``eval_epsilon``; CleanRL's evaluation uses 0.05);
the optimiser and its schedule come from the recipe's ``optim:``.

Exact resume: ``checkpoints/last.ckpt`` is written at the first episode end after every
``trainer.checkpoint_every`` steps, so the environment holds no state but its RNG. It holds
the online and target networks, optimiser, schedule, replay buffer, the step counters,
and every RNG state (Python, NumPy, torch, the agent's and the environment's).
"""

from __future__ import annotations

import copy
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from attnlab.catalog import MODELS
from attnlab.errors import ConfigError, NonFiniteLossError
from attnlab.objectives.categorical_dqn import categorical_loss
from attnlab.objectives.dqn import td_loss
from attnlab.rl.atari_attention import episode_figure as atari_episode_figure
from attnlab.rl.atari_envs import atari_ids, make_atari
from attnlab.rl.envs import (
    Policy,
    Spaces,
    discrete_spaces,
    env_rng_state,
    episode_returns,
    make_env,
    random_policy,
    set_env_rng_state,
)
from attnlab.rl.navigation import (
    NAMESPACE,
    NavConfig,
    NavigationEnv,
    make_navigation,
    navigation_episodes,
    summarise,
)
from attnlab.rl.navigation_attention import episode_figure
from attnlab.rl.navigation_cloud import episode_clouds
from attnlab.rl.navigation_replay import ByteReplayBuffer
from attnlab.rl.navigation_sketch import (
    SketchEpisode,
    displacement_metrics,
    kind_seeds,
    scene_test,
    scripted_policy,
    sketch_episodes,
    trajectories_figure,
)
from attnlab.rl.nstep import NStepQueue
from attnlab.rl.prioritized import PrioritySampler
from attnlab.rl.replay import ReplayBuffer, Transitions
from attnlab.rl.runner_files import (
    TRAINER_KEYS,
    checked_checkpoint,
    load_run_weights,
    runner_device,
    torch_threads,
)
from attnlab.runs.checkpoint_io import atomic_torch_save, safe_torch_load
from attnlab.runs.clock import TrainClock
from attnlab.runs.progress import StepProgress
from attnlab.runs.rng import generator_state, global_rng_state, set_generator_state, set_global_rng_state
from attnlab.runs.rundir import RunDir
from attnlab.runs.runner import Fitted, Runner, Weights, register_runner, reject_trainer_keys
from attnlab.runs.spec import RunSpec
from attnlab.runs.tensorboard import drop_steps_from
from attnlab.status import say
from attnlab.train.optim import build_optimizer, build_scheduler

CHECKPOINT_FORMAT = "attnlab-dqn/2"  # /2: the training clock


@dataclass
class DQNConfig:
    """The recipe's ``dqn:`` section (CleanRL's names where it has one)."""

    env: str = "CartPole-v1"  # a gymnasium id with flat Box observations and Discrete actions
    buffer_size: int = 10_000
    batch_size: int = 128
    gamma: float = 0.99
    learning_starts: int = 1_000  # environment steps before the first update
    train_every: int = 1  # environment steps between updates (CleanRL: train_frequency)
    target_sync_every: int = 500  # environment steps between target updates (target_network_frequency)
    tau: float = 1.0  # target <- tau * online + (1 - tau) * target; 1 copies
    start_epsilon: float = 1.0
    end_epsilon: float = 0.05
    exploration_fraction: float = 0.5  # of trainer.max_steps over which epsilon decays
    # huber / mse: on Q-values; categorical: C51's cross-entropy, for a distributional Q-network
    loss: Literal["huber", "mse", "categorical"] = "mse"
    double_q: bool = False  # Double DQN targets (van Hasselt et al. 2016)
    n_step: int = 1  # rewards summed into one transition (Rainbow: 3)
    prioritized: bool = False  # proportional prioritised replay (Schaul et al. 2016)
    priority_alpha: float = 0.5  # priority exponent (Rainbow's)
    priority_beta: float = 0.4  # importance-sampling exponent at the first step, linear to 1 at the last
    clip_reward: bool = False  # learn from rewards clipped to [-1, 1] (Atari); returns are reported unclipped
    eval_episodes: int = 10  # greedy episodes per validation and for the test
    eval_epsilon: float = 0.0  # random actions in evaluation (Atari: a greedy agent may never press FIRE)
    # leading observation entries kept as uint8 in the replay buffer (integer pixels or class ids;
    # the navigation simulator's size * size view); 0 keeps every entry as float32
    replay_byte_dim: int = 0
    # torch's intra-op threads while the runner runs: a small network's per-step work is too small
    # to share, and on a busy 2-core machine two threads were 18x slower than one
    torch_threads: int = 1

    def __post_init__(self) -> None:
        positive = (
            "buffer_size",
            "batch_size",
            "train_every",
            "target_sync_every",
            "eval_episodes",
            "torch_threads",
            "n_step",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"dqn.{name} must be >= 1, got {getattr(self, name)}")
        unit = ("gamma", "start_epsilon", "end_epsilon", "priority_alpha", "priority_beta", "eval_epsilon")
        for name in unit:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"dqn.{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("tau", "exploration_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"dqn.{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.replay_byte_dim < 0:
            raise ConfigError(f"dqn.replay_byte_dim must be >= 0, got {self.replay_byte_dim}")
        if self.learning_starts < 0:
            raise ConfigError(f"dqn.learning_starts must be >= 0, got {self.learning_starts}")


def epsilon_at(step: int, cfg: DQNConfig, max_steps: int) -> float:
    """Linear from ``start_epsilon`` to ``end_epsilon`` over ``exploration_fraction * max_steps``."""
    duration = max(1.0, cfg.exploration_fraction * max_steps)
    slope = (cfg.end_epsilon - cfg.start_epsilon) / duration
    return max(cfg.start_epsilon + slope * step, cfg.end_epsilon)


def eval_seeds(seed: int, split: Literal["val", "test"], count: int) -> list[int]:
    """Fixed environment seeds per split, apart from the training environment's ``seed``."""
    base = (seed * 1_000_003 + (1 if split == "val" else 2) * 100_003) % 2**31
    return [base + i for i in range(count)]


@register_runner("dqn", config=DQNConfig())
class DQNRunner(Runner):
    """Deep Q-learning: the recipe's ``model`` is the Q-network, ``dqn:`` the algorithm."""

    sections = ("model",)

    def fit(self, run: RunDir, spec: RunSpec, *, checkpoint: Path | None) -> Fitted:
        with torch_threads(spec.runner_config.torch_threads):
            agent = _Agent(spec)
            say(f"model {spec.model_name}: Q-network; environment {spec.runner_config.env}")
            if checkpoint is not None:
                agent.load(safe_torch_load(checkpoint), checkpoint)
                drop_steps_from(run.path / "tb", agent.step)  # each step logged once
            agent.clock.start()
            run.mark_running()
            with SummaryWriter(run.path / "tb", flush_secs=10) as writer:
                try:
                    agent.train(run, writer)
                except KeyboardInterrupt:
                    return Fitted(None, {}, agent.clock.seconds, agent.clock.segments, interrupted=True)
            seconds, segments = agent.clock.seconds, agent.clock.segments
            return Fitted(agent.model, agent.test(), seconds, segments, figures=agent.figures(run.figures))

    def evaluate(self, run: RunDir, spec: RunSpec, weights: Weights) -> dict[str, float]:
        with torch_threads(spec.runner_config.torch_threads):
            agent = _Agent(spec)
            load_run_weights(agent.model, run, weights, "DQN", CHECKPOINT_FORMAT)
            return agent.test()


def _check_fits(spec: RunSpec, model: nn.Module, spaces: Spaces, env_id: str) -> None:
    """The Q-network's input and output sizes against the environment's spaces, and a
    distributional network for the categorical loss."""
    config = spec.model_config
    for field, value, what in (
        ("obs_dim", spaces.obs_dim, "observations of length"),
        ("num_actions", spaces.num_actions, "actions:"),
    ):
        if getattr(config, field, value) != value:
            raise ConfigError(
                f"environment '{env_id}' has {what} {value} but model.{field} is {getattr(config, field)}"
            )
    example = getattr(model, "example_inputs", None)
    if spaces.pixels and example is not None and tuple(example(1)["obs"].shape[1:]) != spaces.obs_shape:
        raise ConfigError(
            f"environment '{env_id}' gives frames {spaces.obs_shape} but model {spec.model_name} "
            f"takes {tuple(example(1)['obs'].shape[1:])}"
        )
    if spec.runner_config.loss == "categorical" and not isinstance(
        getattr(model, "support", None), torch.Tensor
    ):
        raise ConfigError(
            f"dqn.loss categorical needs a distributional Q-network (atoms and a support, such as "
            f"aqt-atari); model {spec.model_name} gives Q-values only: use huber or mse"
        )


def make_dqn_env(env_id: str) -> Any:
    """attnlab's navigation simulator, Atari with the standard wrappers, or any gymnasium id."""
    if env_id.startswith(NAMESPACE):
        return make_navigation(env_id)  # lists the known ids
    return make_atari(env_id) if env_id in atari_ids() else make_env(env_id)


class _Agent:
    """Everything the loop changes, and how to checkpoint it."""

    def __init__(self, spec: RunSpec) -> None:
        cfg: DQNConfig = spec.runner_config
        reject_trainer_keys(spec.trainer, TRAINER_KEYS, runner="dqn")
        for name in ("max_steps", "val_every", "checkpoint_every", "log_every"):
            if getattr(spec.trainer, name) < 1:
                raise ConfigError(f"trainer.{name} must be >= 1, got {getattr(spec.trainer, name)}")
        self.spec, self.cfg, self.trainer = spec, cfg, spec.trainer
        self.device = runner_device(spec.trainer)
        torch.use_deterministic_algorithms(spec.trainer.deterministic, warn_only=True)
        self.env, self.eval_env = make_dqn_env(cfg.env), make_dqn_env(cfg.env)
        self.spaces = discrete_spaces(self.env, cfg.env)
        random.seed(spec.seed)
        np.random.seed(spec.seed % 2**32)
        torch.manual_seed(spec.seed)
        self.model: nn.Module = MODELS.get(spec.model_name).cls(spec.model_config).to(self.device)
        _check_fits(spec, self.model, self.spaces, cfg.env)
        self.noisy = callable(getattr(self.model, "reset_noise", None))
        self.target = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = build_optimizer(self.model, spec.optim)
        updates = max(1, (self.trainer.max_steps - cfg.learning_starts) // cfg.train_every)
        self.scheduler = build_scheduler(self.optimizer, spec.optim, total_steps=updates)
        byte_dim = self.spaces.obs_dim if self.spaces.pixels else cfg.replay_byte_dim
        self.buffer: ReplayBuffer | ByteReplayBuffer = (
            ByteReplayBuffer(cfg.buffer_size, self.spaces.obs_dim, byte_dim)
            if byte_dim
            else ReplayBuffer(cfg.buffer_size, self.spaces.obs_dim)
        )
        self.priorities = PrioritySampler(cfg.buffer_size, cfg.priority_alpha) if cfg.prioritized else None
        self.nstep = NStepQueue(cfg.n_step, cfg.gamma)
        self.rng = np.random.default_rng(spec.seed)  # exploration and replay sampling
        self.step = 0  # environment steps taken
        self.episodes = 0  # episodes finished
        self.updates = 0  # optimiser steps taken
        self.checkpoint_step = 0  # step of the last checkpoint
        self.best_val = -math.inf
        self.clock = TrainClock()  # wall time over the run's segments, kept in the checkpoint

    # -- checkpoint ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "episodes": self.episodes,
            "updates": self.updates,
            "checkpoint_step": self.checkpoint_step,
            "best_val": self.best_val,
            "clock": self.clock.state_dict(),
            "model": self.model.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "replay": self.buffer.state_dict(),
            **({"priorities": self.priorities.state_dict()} if self.priorities is not None else {}),
            "rng": {
                "global": global_rng_state(),
                "agent": generator_state(self.rng),
                "env": env_rng_state(self.env),
            },
        }

    def load(self, state: Any, path: Path) -> None:
        state = checked_checkpoint(state, path, "DQN", CHECKPOINT_FORMAT)
        for name in ("step", "episodes", "updates", "checkpoint_step", "best_val"):
            setattr(self, name, state[name])
        self.clock.load_state_dict(state["clock"])
        self.model.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.buffer.load_state_dict(state["replay"])
        if self.priorities is not None:
            if "priorities" not in state:
                raise ConfigError(
                    f"{path} was written without prioritised replay; resume it with dqn.prioritized false"
                )
            self.priorities.load_state_dict(state["priorities"])
        set_global_rng_state(state["rng"]["global"])
        set_generator_state(self.rng, state["rng"]["agent"])
        set_env_rng_state(self.env, state["rng"]["env"])

    def save(self, path: Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    # -- acting and learning ----------------------------------------------------
    def inputs(self, flat: torch.Tensor) -> torch.Tensor:
        """Flattened observations (B, obs_dim) -> what the Q-network takes: frames (B, *shape) in [0, 1]."""
        if not self.spaces.pixels:
            return flat
        return flat.view(flat.shape[0], *self.spaces.obs_shape) / 255.0  # (B, C, H, W)

    def greedy(self, obs: np.ndarray) -> int:
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)  # (1, obs_dim)
            return int(self.model(self.inputs(x)).q_values.argmax(dim=1).item())

    def act(self, obs: np.ndarray, epsilon: float) -> int:
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.spaces.num_actions))
        return self.greedy(obs)

    def support(self) -> torch.Tensor:
        """The atoms of a distributional Q-network (checked at start)."""
        support = self.model.support
        assert isinstance(support, torch.Tensor)
        return support

    def replay(self) -> tuple[Transitions, torch.Tensor | None, torch.Tensor | None]:
        """A batch, its slots and importance-sampling weights (None without prioritised replay)."""
        if self.priorities is None:
            return self.buffer.sample(self.cfg.batch_size, self.rng).to(self.device), None, None
        progress = min(1.0, self.step / self.trainer.max_steps)
        beta = self.cfg.priority_beta + (1.0 - self.cfg.priority_beta) * progress
        slots, weights = self.priorities.sample(self.cfg.batch_size, len(self.buffer), beta, self.rng)
        return self.buffer.gather(slots).to(self.device), slots, weights.to(self.device)

    def update(self) -> dict[str, torch.Tensor]:
        batch, slots, weights = self.replay()
        total, errors, q_taken = self.loss(batch, weights)
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                f"training stopped at step {self.step}: non-finite loss term 'td' = {float(total)}; "
                "lower optim.lr or check the environment's rewards"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.trainer.gradient_clip_val is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.trainer.gradient_clip_val)
        self.optimizer.step()
        self.scheduler.step()
        self.updates += 1
        if self.priorities is not None and slots is not None:
            self.priorities.update(slots, errors)
        return {"td": total.detach(), "q": q_taken.mean()}

    def loss(
        self, batch: Transitions, weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The recipe's loss on ``batch``, each transition's share (prioritised replay's new
        priorities) and Q(s, a) of the actions taken, both (B,) without gradient."""
        obs, next_obs = self.inputs(batch.obs), self.inputs(batch.next_obs)
        out = self.model(obs)
        with torch.no_grad():
            if self.noisy:
                self.target.reset_noise()  # type: ignore[operator]
            target = self.target(next_obs)
            online_next = self.model(next_obs).q_values if self.cfg.double_q else None
        if self.cfg.loss == "categorical":
            dist = categorical_loss(
                out.log_probs,
                batch.actions,
                batch.rewards,
                batch.terminated,
                target.probs,
                self.support(),
                gamma=self.cfg.gamma,
                online_next_q_values=online_next,
                horizons=batch.horizons,
                weights=weights,
            )
            return dist.total, dist.each, dist.q_taken
        td = td_loss(
            out.q_values,
            batch.actions,
            batch.rewards,
            batch.terminated,
            target.q_values,
            gamma=self.cfg.gamma,
            online_next_q_values=online_next,
            kind=self.cfg.loss,
            horizons=batch.horizons,
            weights=weights,
        )
        return td.total, td.errors, td.q_taken.detach()

    def remember(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        """One environment step into the n-step queue, and the transitions it completes into replay."""
        if self.cfg.clip_reward:
            reward = float(np.clip(reward, -1.0, 1.0))
        flat, flat_next = np.ravel(obs), np.ravel(next_obs)
        for t in self.nstep.push(flat, action, reward, flat_next, terminated, truncated):
            slot = self.buffer.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, t.horizon)
            if self.priorities is not None:
                self.priorities.add(slot)

    def sync_target(self) -> None:
        target, online = self.target.state_dict(), self.model.state_dict()
        with torch.no_grad():
            for name, value in online.items():
                if self.cfg.tau == 1.0 or not value.is_floating_point():
                    target[name].copy_(value)
                else:
                    target[name].lerp_(value, self.cfg.tau)

    # -- the loop ------------------------------------------------------------------
    def train(self, run: RunDir, writer: SummaryWriter) -> None:
        cfg, max_steps = self.cfg, self.trainer.max_steps
        obs: np.ndarray | None = None  # None: the next step starts an episode
        episode_return, episode_length = 0.0, 0
        logged: dict[str, list[torch.Tensor]] = {}
        with StepProgress(max_steps, start=self.step, enabled=self.trainer.progress_bar) as bar:
            while self.step < max_steps:
                if obs is None:  # the first episode seeds the environment; later ones continue its RNG
                    obs, _ = self.env.reset(seed=self.spec.seed if self.episodes == 0 else None)
                epsilon = epsilon_at(self.step, cfg, max_steps)
                if self.noisy and self.step % cfg.train_every == 0:
                    self.model.reset_noise()  # type: ignore[operator]
                action = self.act(obs, epsilon)
                next_obs, reward, terminated, truncated, _ = self.env.step(action)
                self.remember(obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
                obs, self.step = next_obs, self.step + 1
                episode_return, episode_length = episode_return + float(reward), episode_length + 1
                if self.step > cfg.learning_starts and self.step % cfg.train_every == 0:
                    for name, value in self.update().items():
                        logged.setdefault(name, []).append(value)
                if self.step % cfg.target_sync_every == 0:
                    self.sync_target()
                if self.step % self.trainer.log_every == 0:
                    self._log(writer, logged, epsilon)
                    bar.update(self.step, eps=epsilon)
                if self.step % self.trainer.val_every == 0 or self.step == max_steps:
                    self.validate(run, writer)
                if terminated or truncated:
                    writer.add_scalar("train/episode_return", episode_return, self.step)
                    writer.add_scalar("train/episode_length", episode_length, self.step)
                    bar.update(self.step, eps=epsilon, ret=episode_return)
                    obs, episode_return, episode_length = None, 0.0, 0
                    self.episodes += 1
                    every = self.trainer.checkpoint_every
                    if self.step // every > self.checkpoint_step // every:
                        self.checkpoint_step = self.step
                        self.save(run.last_checkpoint)
            bar.update(self.step)
        self.save(run.last_checkpoint)  # the final state (mid-episode: the loop is over, nothing resumes it)

    def _log(self, writer: SummaryWriter, logged: dict[str, list[torch.Tensor]], epsilon: float) -> None:
        for name, values in logged.items():
            writer.add_scalar(f"train/{name}", float(torch.stack(values).mean()), self.step)
        logged.clear()
        writer.add_scalar("train/epsilon", epsilon, self.step)
        writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.step)

    def validate(self, run: RunDir, writer: SummaryWriter) -> None:
        returns = self.returns("val")
        mean = statistics.fmean(returns)
        writer.add_scalar("val/return", mean, self.step)
        if mean > self.best_val:
            self.best_val = mean
            best = {"format": CHECKPOINT_FORMAT, "step": self.step, "val_return": mean}
            atomic_torch_save(best | {"model": self.model.state_dict()}, run.best_checkpoint)

    def returns(self, split: Literal["val", "test"]) -> list[float]:
        """Greedy returns on the split's fixed seeds (the training RNGs are not touched)."""
        self.model.eval()
        try:
            seeds = eval_seeds(self.spec.seed, split, self.cfg.eval_episodes)
            return episode_returns(self.eval_env, self.eval_policy(seeds[0]), seeds)
        finally:
            self.model.train()

    def eval_policy(self, seed: int) -> Policy:
        """Greedy, or epsilon-greedy with ``eval_epsilon`` from its own generator (so that a split's
        episodes are the same at every evaluation)."""
        epsilon = self.cfg.eval_epsilon
        if epsilon == 0:
            return self.greedy
        rng = np.random.default_rng(seed)
        explore = random_policy(self.spaces.num_actions, seed + 1)
        return lambda obs: explore(obs) if rng.random() < epsilon else self.greedy(obs)

    def test(self) -> dict[str, float]:
        """Mean and spread of the greedy return and of a random policy's on the same seeds."""
        agent = self.returns("test")
        seeds = eval_seeds(self.spec.seed, "test", self.cfg.eval_episodes)
        floor = episode_returns(self.eval_env, random_policy(self.spaces.num_actions, seeds[0]), seeds)
        return self.navigation_test(seeds) | {
            "test/return": statistics.fmean(agent),
            "test/return_std": statistics.pstdev(agent),
            "test/random_policy_return": statistics.fmean(floor),
            "test/random_policy_return_std": statistics.pstdev(floor),
        }

    def navigation_test(self, seeds: list[int]) -> dict[str, float]:
        """Navigation's metrics: success rate, collisions and return of the greedy and the random
        policy; in sketch mode ADE / FDE per kind of those and of the scripted policy, on the test
        seeds (``test/...``) and on the thesis's 10 sketches in one scene (``test/scene_...``). Else none."""
        config = self.sketch_config()
        if config is not None:
            runs = self.sketch_runs(config, kind_seeds(config, seeds)) | self.sketch_runs(
                *scene_test(config), prefix="test/scene_"
            )
            return {k: v for name, eps in runs.items() for k, v in displacement_metrics(eps, name).items()}
        if not isinstance(self.eval_env.unwrapped, NavigationEnv):
            return {}
        self.model.eval()
        try:
            agent = navigation_episodes(self.eval_env, self.greedy, seeds)
        finally:
            self.model.train()
        floor = navigation_episodes(self.eval_env, random_policy(self.spaces.num_actions, seeds[0]), seeds)
        return summarise(agent, "test/") | summarise(floor, "test/random_policy_")

    def attention_figures(self, folder: Path) -> dict[str, Path]:
        """For an action-query model on the navigation simulator (one whose decoder attention the
        pictures read), else none: the first test episode's first steps with every action's attention
        (:func:`attnlab.rl.navigation_attention.episode_figure`) and the chosen action's on the depth
        points (:func:`attnlab.rl.navigation_cloud.episode_clouds`)."""
        if self.spaces.pixels and isinstance(getattr(self.model, "decoder", None), nn.Module):
            return self.atari_figures(folder)
        env = self.eval_env.unwrapped
        if (
            not isinstance(env, NavigationEnv)
            or getattr(getattr(self.model, "config", None), "grid", None) is None
        ):
            return {}
        seed = eval_seeds(self.spec.seed, "test", 1)[0]
        try:
            steps = episode_figure(self.model, env, folder / "action_attention.png", seed=seed)
            caption = (
                "Every action query's attention over the view, first test episode's first steps "
                "(the chosen action framed, Q-values in the titles)"
            )
            return {caption: steps} | episode_clouds(self.model, env, folder, seed=seed)
        finally:
            self.model.train()

    def atari_figures(self, folder: Path) -> dict[str, Path]:
        """An Atari AQT's per-action attention over the first test episode (the evaluation policy)."""
        seed = eval_seeds(self.spec.seed, "test", 1)[0]
        self.model.eval()
        try:
            path = atari_episode_figure(
                self.model, self.eval_env, self.eval_policy(seed), folder / "action_attention.png", seed=seed
            )
        finally:
            self.model.train()
        caption = (
            "Each action query's attention over the newest frame, every 25th step of the first test "
            "episode (the greedy action framed, Q-values in the titles)"
        )
        return {caption: path}

    def sketch_config(self) -> NavConfig | None:
        env = self.eval_env.unwrapped
        return env.config if isinstance(env, NavigationEnv) and env.config.sketch != "none" else None

    def sketch_runs(
        self, config: NavConfig, seeds: dict[str, list[int]], prefix: str = "test/"
    ) -> dict[str, list[SketchEpisode]]:
        """The greedy agent's, the random policy's and the scripted policy's episodes on each sketch
        kind's ``seeds``, by metric prefix."""
        self.model.eval()
        try:
            agent = sketch_episodes(config, self.greedy, seeds)
        finally:
            self.model.train()
        floor = random_policy(self.spaces.num_actions, next(iter(seeds.values()))[0])
        return {
            prefix: agent,
            f"{prefix}random_policy_": sketch_episodes(config, floor, seeds),
            f"{prefix}scripted_": sketch_episodes(config, scripted_policy(config), seeds),
        }

    def figures(self, folder: Path) -> dict[str, Path]:
        """The report's pictures: in sketch mode, one test episode of each sketch kind; for an
        action-query model, its attention on the depth points over the first test episode."""
        config = self.sketch_config()
        if config is None:
            return self.attention_figures(folder)
        seeds = eval_seeds(self.spec.seed, "test", self.cfg.eval_episodes)
        runs = self.sketch_runs(config, {kind: s[:1] for kind, s in kind_seeds(config, seeds).items()})
        names = {"test/": "agent", "test/random_policy_": "random policy", "test/scripted_": "scripted"}
        path = trajectories_figure({names[k]: v for k, v in runs.items()}, folder / "sketch_trajectories.png")
        scene = self.sketch_runs(*scene_test(config), prefix="test/")
        scene_path = trajectories_figure(
            {names[k]: v for k, v in scene.items()}, folder / "scene_sketches.png", columns=5
        )
        return {
            "Trajectories on the first test sketch of each kind": path,
            "The thesis's test: 10 fixed sketches in one scene (4 equal, 2 unequal, 4 curves)": scene_path,
        } | self.attention_figures(folder)
