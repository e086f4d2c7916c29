"""``runner: ppo``: PPO on vectorised MiniGrid or Atari environments, optionally with RND
(Burda et al. 2018, arXiv:1810.12894) or transition-RND (the seed thesis: RND on the queue of
the last ``n + 1`` observations).

Implementation details (references in ``docs/rnd.md``):

1. ``num_envs`` environments stepped in turn (:mod:`attnlab.rl.vector`), ``num_steps`` steps each
   per rollout; ``trainer.max_steps`` counts environment steps over all environments.
2. GAE (lambda ``gae_lambda``) per value stream; a time-limit cut bootstraps from the value of
   the episode's last observation, only a terminal state cuts the extrinsic return.
3. ``epochs`` passes over the rollout in ``minibatches`` shuffled minibatches: clipped
   surrogate, clipped value loss, entropy bonus, advantages normalised per minibatch.
4. With ``intrinsic: rnd``: observation statistics from ``obs_norm_warmup`` rollouts of a random
   agent before training (and updated with every rollout), each frame normalised and clipped to
   [-5, 5]; intrinsic rewards from the predictor's error on the queue that ends with the next
   observation, divided by the running std of their discounted (``gamma_int``) non-episodic
   returns; two value heads; advantages ``ext_coef * A_ext + int_coef * A_int``; the predictor
   trained on a random ``update_proportion`` of each minibatch. Extrinsic rewards clipped to
   [-1, 1] with ``clip_reward``.
5. Evaluation samples from the policy (a generator seeded per split), ``eval_episodes`` episodes on
   fixed seeds; the test also runs a uniformly random policy on the same seeds (the floor).

Exact resume: ``checkpoints/last.ckpt`` is written after a rollout's update, once every
``trainer.checkpoint_every`` steps. It holds the networks, optimiser, schedule, observation and
intrinsic-return statistics, the reward filter, the transition queues, each environment's episode
number and actions since its reset (replayed on resume), the current episode returns, and every RNG.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from attnlab.catalog import MODELS
from attnlab.errors import ConfigError, NonFiniteLossError, unknown
from attnlab.objectives.ppo import (
    gae,
    intrinsic_reward,
    policy_loss,
    ppo_terms,
    rnd_predictor_loss,
    value_loss,
)
from attnlab.objectives.terms import weighted_sum
from attnlab.rl.rnd import (
    RewardForwardFilter,
    RunningMeanStd,
    TransitionQueue,
    normalise_intrinsic,
    queue_input,
)
from attnlab.rl.runner_files import (
    TRAINER_KEYS,
    checked_checkpoint,
    load_run_weights,
    runner_device,
    torch_threads,
)
from attnlab.rl.vector import SeededVectorEnv, Visit, episode_seed
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

CHECKPOINT_FORMAT = "attnlab-ppo/1"
OBS_CLIP = 5.0  # normalised RND inputs are clipped to [-5, 5] (the paper, section 2.4)


@dataclass
class PPOConfig:
    """The recipe's ``ppo:`` section (CleanRL's names where it has one)."""

    env: str = "MiniGrid-DoorKey-5x5-v0"  # a MiniGrid-* id or ALE/{Breakout,MontezumaRevenge,Venture}-v5
    num_envs: int = 8
    num_steps: int = 128  # steps per environment per rollout
    epochs: int = 4  # passes over each rollout (update_epochs)
    minibatches: int = 4  # per epoch (num_minibatches)
    gamma: float = 0.99  # extrinsic discount (RND: 0.999)
    gae_lambda: float = 0.95
    clip: float = 0.2  # surrogate clip (clip_coef)
    clip_value: bool = True  # clip the value loss as well (clip_vloss)
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    norm_adv: bool = True
    clip_reward: bool = False  # clip extrinsic rewards to [-1, 1] (Atari)
    intrinsic: Literal["none", "rnd"] = "none"
    transition_n: int = 0  # RND sees the last n + 1 observations; 0 is RND, the thesis uses 4
    gamma_int: float = 0.99
    ext_coef: float = 2.0  # advantage weights (the paper: 2 : 1)
    int_coef: float = 1.0
    update_proportion: float = 0.25  # of each minibatch the predictor trains on
    obs_norm_warmup: int = 50  # random-agent rollouts (of num_steps per environment) for the statistics
    rnd_feature_dim: int = 128  # MiniGrid; the CNN's is 512 (the paper)
    rnd_hidden_dim: int = 256
    eval_episodes: int = 10
    eval_max_steps: int = 0  # cut evaluation episodes after this many steps (0: the environment's limit)
    torch_threads: int = 1  # small networks: one intra-op thread is fastest on a shared 2-core machine

    def __post_init__(self) -> None:
        if self.transition_n < 0:
            raise ConfigError(f"ppo.transition_n must be >= 0 (0 is plain RND), got {self.transition_n}")
        for name in ("num_envs", "num_steps", "epochs", "minibatches", "eval_episodes", "torch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ppo.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda", "gamma_int", "update_proportion"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"ppo.{name} must lie in [0, 1], got {getattr(self, name)}")
        for name in ("clip", "ent_coef", "vf_coef", "ext_coef", "int_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ppo.{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_max_steps < 0:
            raise ConfigError(f"ppo.eval_max_steps must be >= 0, got {self.eval_max_steps}")
        if self.obs_norm_warmup < 0:
            raise ConfigError(f"ppo.obs_norm_warmup must be >= 0, got {self.obs_norm_warmup}")
        if (self.num_envs * self.num_steps) % self.minibatches:
            raise ConfigError(
                f"ppo.minibatches ({self.minibatches}) must divide num_envs * num_steps "
                f"({self.num_envs * self.num_steps})"
            )


@dataclass(frozen=True)
class EnvKind:
    """How to build one environment of a family, and what the RND networks see of it."""

    make: Callable[[], gym.Env[Any, Any]]
    visit: Visit | None  # cells (MiniGrid), rooms (Montezuma)
    frames: bool  # (4, 84, 84) uint8 stacks; else flat float vectors
    visit_name: str


def env_kind(env_id: str) -> EnvKind:
    """The environment family of ``env_id``; an unknown id lists the known ones."""
    from attnlab.rl.atari_envs import atari_ids, make_atari, montezuma_room
    from attnlab.rl.minigrid_envs import agent_cell, make_minigrid, minigrid_ids

    if env_id in atari_ids():
        room = montezuma_room if "MontezumaRevenge" in env_id else None
        return EnvKind(lambda: make_atari(env_id), room, True, "rooms")
    if env_id.startswith("MiniGrid-"):
        make_minigrid(env_id).close()  # the one-line error for an unknown MiniGrid id
        return EnvKind(lambda: make_minigrid(env_id), agent_cell, False, "cells")
    raise unknown("environment", env_id, [*atari_ids(), *minigrid_ids()])


@register_runner("ppo", config=PPOConfig())
class PPORunner(Runner):
    """PPO (+ RND): the recipe's ``model`` is the actor-critic, ``ppo:`` the algorithm."""

    sections = ("model",)

    def fit(self, run: RunDir, spec: RunSpec, *, checkpoint: Path | None) -> Fitted:
        with torch_threads(spec.runner_config.torch_threads):
            agent = _Agent(spec)
            cfg = spec.runner_config
            intrinsic = f"{cfg.intrinsic} (n={cfg.transition_n})" if cfg.intrinsic == "rnd" else "none"
            say(f"model {spec.model_name}; environment {cfg.env}; intrinsic reward {intrinsic}")
            if checkpoint is not None:
                agent.load(safe_torch_load(checkpoint), checkpoint)
                drop_steps_from(run.path / "tb", agent.step)
            elif agent.rnd is not None:
                agent.warm_up_obs_stats()
            agent.clock.start()
            run.mark_running()
            with SummaryWriter(run.path / "tb", flush_secs=10) as writer:
                try:
                    agent.train(run, writer)
                except KeyboardInterrupt:
                    return Fitted(None, {}, agent.clock.seconds, agent.clock.segments, interrupted=True)
            if agent.kind.visit is not None:
                say(f"{len(agent.envs.visited_all)} distinct {agent.kind.visit_name} visited in training")
            return Fitted(agent.model, agent.test(), agent.clock.seconds, agent.clock.segments)

    def evaluate(self, run: RunDir, spec: RunSpec, weights: Weights) -> dict[str, float]:
        with torch_threads(spec.runner_config.torch_threads):
            agent = _Agent(spec, training=False)
            load_run_weights(agent.model, run, weights, "PPO", CHECKPOINT_FORMAT)
            return agent.test()


def _check_model(spec: RunSpec, kind: EnvKind, num_actions: int, obs_shape: tuple[int, ...]) -> None:
    """The actor-critic's sizes and heads against the environment and the ``ppo:`` section."""
    config, cfg = spec.model_config, spec.runner_config
    wanted: dict[str, Any] = {"num_actions": num_actions, "intrinsic_head": cfg.intrinsic == "rnd"}
    wanted |= {"frames": obs_shape[0]} if kind.frames else {"obs_dim": obs_shape[0]}
    for field, value in wanted.items():
        if not hasattr(config, field):
            raise ConfigError(f"model '{spec.model_name}' has no '{field}'; environment '{cfg.env}' needs it")
        if getattr(config, field) != value:
            why = (
                f"ppo.intrinsic is {cfg.intrinsic}"
                if field == "intrinsic_head"
                else f"environment '{cfg.env}'"
            )
            raise ConfigError(f"{why} needs model.{field} = {value}, got {getattr(config, field)}")


def _rnd_network(cfg: PPOConfig, kind: EnvKind, obs_shape: tuple[int, ...]) -> nn.Module:
    """rnd-cnn on the newest Atari frame, rnd-mlp on MiniGrid's flat view; n + 1 of them."""
    name = "rnd-cnn" if kind.frames else "rnd-mlp"
    entry = MODELS.get(name)
    sizes: dict[str, int] = {"frames": cfg.transition_n + 1, "feature_dim": cfg.rnd_feature_dim}
    if not kind.frames:
        sizes |= {"obs_dim": obs_shape[0], "hidden_dim": cfg.rnd_hidden_dim}
    return entry.cls(dataclasses.replace(entry.config, **sizes))


@dataclass
class _Rollout:
    """One rollout's tensors, (T, N, ...) each."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values_ext: torch.Tensor
    values_int: torch.Tensor
    rewards_ext: torch.Tensor
    dones: torch.Tensor
    queues: torch.Tensor  # (T, N, n + 1, *frame) raw observations ending with the next one
    valid: torch.Tensor  # (T, N, n + 1)


class _Agent:
    """Everything the loop changes, and how to checkpoint it."""

    def __init__(self, spec: RunSpec, *, training: bool = True) -> None:
        cfg: PPOConfig = spec.runner_config
        reject_trainer_keys(spec.trainer, TRAINER_KEYS, runner="ppo")
        for name in ("max_steps", "val_every", "checkpoint_every", "log_every"):
            if getattr(spec.trainer, name) < 1:
                raise ConfigError(f"trainer.{name} must be >= 1, got {getattr(spec.trainer, name)}")
        self.spec, self.cfg, self.trainer = spec, cfg, spec.trainer
        self.device = runner_device(spec.trainer)
        torch.use_deterministic_algorithms(spec.trainer.deterministic, warn_only=True)
        self.kind = env_kind(cfg.env)
        self.eval_env = self.kind.make()
        num_actions = int(self.eval_env.action_space.n)  # type: ignore[attr-defined]
        obs_shape = tuple(self.eval_env.observation_space.shape or ())
        _check_model(spec, self.kind, num_actions, obs_shape)
        self.num_actions = num_actions
        # the frame RND sees: the newest of an Atari stack (the official release), MiniGrid's view
        self.frame_shape = obs_shape[1:] if self.kind.frames else obs_shape
        torch.manual_seed(spec.seed)
        self.model: nn.Module = MODELS.get(spec.model_name).cls(spec.model_config).to(self.device)
        self.rnd = _rnd_network(cfg, self.kind, obs_shape).to(self.device) if cfg.intrinsic == "rnd" else None
        self.clock = TrainClock()
        if not training:
            return
        self.envs = SeededVectorEnv(self.kind.make, cfg.num_envs, spec.seed, self.kind.visit)
        parts = nn.ModuleDict({"policy": self.model} | ({"rnd": self.rnd} if self.rnd is not None else {}))
        self.optimizer = build_optimizer(parts, spec.optim)
        batch = cfg.num_envs * cfg.num_steps
        self.iterations = max(1, self.trainer.max_steps // batch)
        self.scheduler = build_scheduler(
            self.optimizer, spec.optim, total_steps=self.iterations * cfg.epochs * cfg.minibatches
        )
        self.gen = torch.Generator().manual_seed(spec.seed)  # actions, minibatches, predictor masks
        self.np_rng = np.random.default_rng(spec.seed)  # the warm-up's random actions
        self.obs_stats = RunningMeanStd(self.frame_shape)
        self.return_stats = RunningMeanStd()
        self.reward_filter = RewardForwardFilter(cfg.gamma_int)
        obs_dtype = torch.uint8 if self.kind.frames else torch.float32
        self.queue = TransitionQueue(cfg.transition_n, cfg.num_envs, self.frame_shape, obs_dtype)
        self.queue.push(self._frames(self.envs.obs))
        self.step = 0
        self.updates = 0
        self.checkpoint_step = 0
        self.best_val = -math.inf

    def _frames(self, obs: np.ndarray) -> torch.Tensor:
        """What RND sees of observations (N, *obs): the newest Atari frame, or the view itself."""
        x = torch.from_numpy(np.asarray(obs))
        return x[:, -1] if self.kind.frames else x

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        # a copy: the environments overwrite their observation array in place at the next step
        return torch.tensor(np.asarray(obs), device=self.device)

    # -- checkpoint ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "updates": self.updates,
            "checkpoint_step": self.checkpoint_step,
            "best_val": self.best_val,
            "clock": self.clock.state_dict(),
            "model": self.model.state_dict(),
            "rnd": self.rnd.state_dict() if self.rnd is not None else {},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "obs_stats": self.obs_stats.state_dict(),
            "return_stats": self.return_stats.state_dict(),
            "reward_filter": self.reward_filter.state_dict(),
            "queue": self.queue.state_dict(),
            "envs": self.envs.state_dict(),
            "rng": {
                "global": global_rng_state(),
                "agent": self.gen.get_state(),
                "warmup": generator_state(self.np_rng),
            },
        }

    def load(self, state: Any, path: Path) -> None:
        state = checked_checkpoint(state, path, "PPO", CHECKPOINT_FORMAT)
        for name in ("step", "updates", "checkpoint_step", "best_val"):
            setattr(self, name, state[name])
        self.clock.load_state_dict(state["clock"])
        self.model.load_state_dict(state["model"])
        if self.rnd is not None:
            self.rnd.load_state_dict(state["rnd"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.obs_stats.load_state_dict(state["obs_stats"])
        self.return_stats.load_state_dict(state["return_stats"])
        self.reward_filter.load_state_dict(state["reward_filter"])
        self.queue.load_state_dict(state["queue"])
        self.envs.load_state_dict(state["envs"])
        set_global_rng_state(state["rng"]["global"])
        self.gen.set_state(state["rng"]["agent"])
        set_generator_state(self.np_rng, state["rng"]["warmup"])

    def save(self, path: Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    # -- acting ----------------------------------------------------------------
    def warm_up_obs_stats(self) -> None:
        """The observation statistics from a random agent's ``obs_norm_warmup`` rollouts (the
        environments then go on from where the random agent left them, as in the official code)."""
        cfg = self.cfg
        for _ in range(cfg.obs_norm_warmup):
            frames = []
            for _ in range(cfg.num_steps):
                actions = self.np_rng.integers(self.num_actions, size=cfg.num_envs)
                frames.append(self._frames(self.envs.step(actions).final_obs))
            self.obs_stats.update(torch.cat(frames))  # (T * N, *frame)
        self.envs.visited_all.clear()  # count what the agent visits, not the random warm-up
        self.queue = TransitionQueue(
            cfg.transition_n, cfg.num_envs, self.frame_shape, self.queue.frames.dtype
        )
        self.queue.push(self._frames(self.envs.obs))

    @torch.no_grad()
    def collect(self, writer: SummaryWriter) -> _Rollout:
        cfg, n, steps = self.cfg, self.cfg.num_envs, self.cfg.num_steps
        out: dict[str, list[torch.Tensor]] = {k: [] for k in _Rollout.__dataclass_fields__}
        for _ in range(steps):
            obs = self._obs_tensor(self.envs.obs)  # (N, *obs)
            net = self.model(obs)
            probs = torch.softmax(net.logits.float(), dim=1).cpu()  # (N, A)
            actions = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)  # (N,)
            result = self.envs.step(actions.numpy())
            rewards = torch.from_numpy(result.rewards)
            if cfg.clip_reward:
                rewards = rewards.clamp(-1.0, 1.0)
            cut = torch.from_numpy(result.truncated & ~result.terminated)
            if cut.any():  # a time limit is not the end of the task: bootstrap from the last state
                last = self._obs_tensor(result.final_obs[cut.numpy()])
                rewards[cut] += cfg.gamma * self.model(last).value_ext.float().cpu()
            queues, valid = self.queue.push(self._frames(result.final_obs))  # ends with the next obs
            done = torch.from_numpy(result.terminated | result.truncated)
            if done.any():  # the thesis: reset to zeros, then the new episode's first observation
                self.queue.reset(done)
                self.queue.push(self._frames(result.obs), only=done)
            out["obs"].append(obs.cpu())
            out["actions"].append(actions)
            out["log_probs"].append(torch.log(probs.gather(1, actions[:, None]).squeeze(1)))
            out["values_ext"].append(net.value_ext.float().cpu())
            out["values_int"].append(
                net.value_int.float().cpu() if net.value_int is not None else torch.zeros(n)
            )
            out["rewards_ext"].append(rewards)
            out["dones"].append(done)
            out["queues"].append(queues)
            out["valid"].append(valid)
            self.step += n
            for ended in result.finished:
                writer.add_scalar("train/episode_return", ended.episode_return, self.step)
                writer.add_scalar("train/episode_length", ended.length, self.step)
                if self.kind.visit is not None:
                    writer.add_scalar(f"train/{self.kind.visit_name}_per_episode", ended.visited, self.step)
        return _Rollout(**{k: torch.stack(v) for k, v in out.items()})

    # -- learning --------------------------------------------------------------
    @torch.no_grad()
    def _novelty(self, queues: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Raw intrinsic rewards of queues (B, n + 1, *frame), in chunks (Atari rollouts are large)."""
        assert self.rnd is not None
        rewards = []
        for q, v in zip(queues.split(512), valid.split(512), strict=True):
            out = self.rnd(queue_input(q, v, self.obs_stats, OBS_CLIP).to(self.device))
            rewards.append(intrinsic_reward(out.predicted, out.target).float().cpu())
        return torch.cat(rewards)

    @torch.no_grad()
    def targets(self, r: _Rollout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """Advantages (T, N) and the extrinsic and intrinsic returns (T, N)."""
        cfg = self.cfg
        last = self.model(self._obs_tensor(self.envs.obs))
        adv_ext, ret_ext = gae(
            r.rewards_ext,
            r.values_ext,
            r.dones,
            last.value_ext.float().cpu(),
            gamma=cfg.gamma,
            lam=cfg.gae_lambda,
        )
        if self.rnd is None or last.value_int is None:
            return adv_ext, ret_ext, torch.zeros_like(ret_ext), {}
        steps, n = r.rewards_ext.shape
        # the statistics take the rollout's new observations first, as the official update does
        self.obs_stats.update(r.queues[:, :, -1].reshape(steps * n, *self.frame_shape))
        raw = self._novelty(r.queues.flatten(0, 1), r.valid.flatten(0, 1)).view(steps, n)  # (T, N)
        rewards_int = normalise_intrinsic(raw, self.reward_filter, self.return_stats)
        adv_int, ret_int = gae(
            rewards_int,
            r.values_int,
            r.dones,
            last.value_int.float().cpu(),
            gamma=cfg.gamma_int,
            lam=cfg.gae_lambda,
            episodic=False,  # novelty does not end with the episode (the paper, section 2.3)
        )
        stats = {"intrinsic_reward": float(rewards_int.mean()), "novelty_raw": float(raw.mean())}
        return cfg.ext_coef * adv_ext + cfg.int_coef * adv_int, ret_ext, ret_int, stats

    def update(self, r: _Rollout) -> dict[str, float]:
        cfg = self.cfg
        advantages, ret_ext, ret_int, stats = self.targets(r)
        flat = {
            "obs": r.obs.flatten(0, 1),
            "actions": r.actions.flatten(0, 1),
            "log_probs": r.log_probs.flatten(0, 1),
            "values_ext": r.values_ext.flatten(0, 1),
            "values_int": r.values_int.flatten(0, 1),
            "advantages": advantages.flatten(0, 1),
            "ret_ext": ret_ext.flatten(0, 1),
            "ret_int": ret_int.flatten(0, 1),
            "queues": r.queues.flatten(0, 1),
            "valid": r.valid.flatten(0, 1),
        }
        batch = flat["actions"].shape[0]
        logged: dict[str, list[float]] = {}
        for _ in range(cfg.epochs):
            order = torch.randperm(batch, generator=self.gen)
            for index in order.split(batch // cfg.minibatches):
                for name, value in self.minibatch_step({k: v[index] for k, v in flat.items()}).items():
                    logged.setdefault(name, []).append(value)
        return {k: statistics.fmean(v) for k, v in logged.items()} | stats

    def minibatch_step(self, mb: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        mb = {k: v.to(self.device) for k, v in mb.items()}
        net = self.model(mb["obs"])
        log_all = torch.log_softmax(net.logits, dim=1)  # (B, A)
        new_log_prob = log_all.gather(1, mb["actions"][:, None]).squeeze(1)  # (B,)
        entropy = -(log_all.exp() * log_all).sum(dim=1).mean()
        adv = mb["advantages"]
        if cfg.norm_adv:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        value_clip = cfg.clip if cfg.clip_value else None
        rnd = None
        if self.rnd is not None:
            out = self.rnd(queue_input(mb["queues"], mb["valid"], self.obs_stats, OBS_CLIP).to(self.device))
            keep = torch.rand(adv.shape[0], generator=self.gen) < cfg.update_proportion
            rnd = rnd_predictor_loss(out.predicted, out.target, keep.to(self.device))
        terms = ppo_terms(
            policy=policy_loss(new_log_prob, mb["log_probs"], adv, clip=cfg.clip),
            entropy=entropy,
            value_ext=value_loss(net.value_ext, mb["values_ext"], mb["ret_ext"], clip=value_clip),
            value_int=(
                value_loss(net.value_int, mb["values_int"], mb["ret_int"], clip=value_clip)
                if net.value_int is not None
                else None
            ),
            rnd=rnd,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
        )
        total = weighted_sum(terms)
        for name, value in terms.items():
            if not torch.isfinite(value):
                raise NonFiniteLossError(
                    f"training stopped at step {self.step}: non-finite loss term '{name}' = {float(value)}; "
                    "lower optim.lr or check the environment's rewards"
                )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.trainer.gradient_clip_val is not None:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, self.trainer.gradient_clip_val)
        self.optimizer.step()
        self.scheduler.step()
        self.updates += 1
        with torch.no_grad():
            log_ratio = new_log_prob - mb["log_probs"]
            approx_kl = float(((log_ratio.exp() - 1) - log_ratio).mean())
            clip_fraction = float(((log_ratio.exp() - 1.0).abs() > cfg.clip).float().mean())
        return {name: float(value.detach()) for name, value in terms.items()} | {
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
        }

    # -- the loop ----------------------------------------------------------------
    def train(self, run: RunDir, writer: SummaryWriter) -> None:
        batch = self.cfg.num_envs * self.cfg.num_steps
        total = self.iterations * batch
        with StepProgress(total, start=self.step, enabled=self.trainer.progress_bar) as bar:
            while self.step < total:
                before = self.step
                stats = self.update(self.collect(writer))
                if _crossed(before, self.step, self.trainer.log_every):
                    for name, value in stats.items():
                        writer.add_scalar(f"train/{name}", value, self.step)
                    writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.step)
                    if self.kind.visit is not None:
                        writer.add_scalar(
                            f"train/{self.kind.visit_name}_visited", len(self.envs.visited_all), self.step
                        )
                bar.update(self.step, kl=stats["approx_kl"])
                if _crossed(before, self.step, self.trainer.val_every) or self.step >= total:
                    self.validate(run, writer)
                if _crossed(self.checkpoint_step, self.step, self.trainer.checkpoint_every):
                    self.checkpoint_step = self.step
                    self.save(run.last_checkpoint)
        self.save(run.last_checkpoint)

    def validate(self, run: RunDir, writer: SummaryWriter) -> None:
        returns, _ = self.episodes("val", self.policy_actor)
        mean = statistics.fmean(returns)
        writer.add_scalar("val/return", mean, self.step)
        if mean > self.best_val:
            self.best_val = mean
            best = {"format": CHECKPOINT_FORMAT, "step": self.step, "val_return": mean}
            atomic_torch_save(best | {"model": self.model.state_dict()}, run.best_checkpoint)

    def policy_actor(self, seed: int) -> Callable[[np.ndarray], int]:
        """Actions sampled from the policy with a generator of their own (training RNGs untouched)."""
        gen = torch.Generator().manual_seed(seed)

        @torch.no_grad()
        def act(obs: np.ndarray) -> int:
            logits = self.model(self._obs_tensor(obs[None])).logits.float().cpu()  # (1, A)
            return int(torch.multinomial(torch.softmax(logits, dim=1), 1, generator=gen).item())

        return act

    def random_actor(self, seed: int) -> Callable[[np.ndarray], int]:
        rng = np.random.default_rng(seed)
        return lambda obs: int(rng.integers(self.num_actions))

    def episodes(
        self, split: Literal["val", "test"], actor: Callable[[int], Callable[[np.ndarray], int]]
    ) -> tuple[list[float], list[int]]:
        """Undiscounted returns and distinct cells/rooms of one episode per fixed seed."""
        self.model.eval()
        returns, visits = [], []
        try:
            for k in range(self.cfg.eval_episodes):
                seed = episode_seed(self.spec.seed, 1_000_000 + (1 if split == "val" else 2), k)
                act, env = actor(seed), self.eval_env
                obs, _ = env.reset(seed=seed)
                seen = {self.kind.visit(env)} if self.kind.visit is not None else set()
                total, done, steps = 0.0, False, 0
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(act(np.asarray(obs)))
                    total, steps = total + float(reward), steps + 1
                    done = terminated or truncated or steps == self.cfg.eval_max_steps
                    if self.kind.visit is not None:
                        seen.add(self.kind.visit(env))
                returns.append(total)
                visits.append(len(seen))
        finally:
            self.model.train()
        return returns, visits

    def test(self) -> dict[str, float]:
        """The policy's and a random policy's returns (and cells/rooms per episode) on the same seeds."""
        metrics: dict[str, float] = {}
        for prefix, actor in (("", self.policy_actor), ("random_policy_", self.random_actor)):
            returns, visits = self.episodes("test", actor)
            metrics[f"test/{prefix}return"] = statistics.fmean(returns)
            metrics[f"test/{prefix}return_std"] = statistics.pstdev(returns)
            if self.kind.visit is not None:
                metrics[f"test/{prefix}{self.kind.visit_name}_per_episode"] = statistics.fmean(visits)
        return metrics


def _crossed(before: int, after: int, every: int) -> bool:
    """Did the step counter pass a multiple of ``every`` going from ``before`` to ``after``?"""
    return after // every > before // every
