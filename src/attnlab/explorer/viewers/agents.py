"""Viewer of reinforcement-learning runs (``runner: dqn`` / ``runner: ppo``): the trained agent's
first test episode, step by step.

The episode is the runner's own first test episode: DQN acts greedily on the seed of
``eval_seeds(seed, "test", 1)``; PPO samples from its policy with the generator its test seeds per
episode (``ppo._Agent.policy_actor``), ``eval_max_steps`` cutting it as there (and
:data:`VIEW_STEPS` any episode). Of a long episode every k-th step is kept (k doubles while the
episode goes on, so memory stays bounded): at most :data:`MAX_EXAMPLES` steps spread over it.

A step shows what the network saw (the navigation simulator's semantic view, MiniGrid's rendered
7x7 view, Atari's newest frame, a vector's numbers), the action values (DQN's Q) or the policy's
probabilities (PPO), the value estimates, the step's reward and, with RND, its intrinsic reward (the
predictor's error on the queue of views that ends with the next one, with the networks and
statistics of ``checkpoints/last.ckpt``: the final weights hold the policy only). An Action
Q-Transformer shows each decoder layer's cross-attention of every action query over the image
patches (the chosen action's query first), and on navigation the depth view as points from above,
coloured by that attention.

The RL packages (gymnasium, minigrid, ale-py: the ``rl`` extra) are imported only when an agent is
loaded, so the explorer runs without them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from attnlab.catalog import MODELS
from attnlab.data.datamodule import DataModule
from attnlab.explain.capture import attention_layers, capture
from attnlab.explorer.pictures import png_url, unit
from attnlab.explorer.viewers.agent_pictures import depth_cloud, rgb_png, semantic_view
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable
from attnlab.layers.attention import MultiHeadAttention
from attnlab.models.rl.nav_obs import GOAL_FEATURES
from attnlab.objectives.ppo import intrinsic_reward
from attnlab.rl.rnd import RunningMeanStd, queue_input
from attnlab.rl.runner_files import checked_checkpoint, load_run_weights, torch_threads
from attnlab.runs.checkpoint_io import safe_torch_load
from attnlab.runs.rundir import RunDir
from attnlab.runs.spec import RunSpec
from attnlab.state_dicts import load_state

if TYPE_CHECKING:
    import gymnasium as gym

    from attnlab.rl.navigation import NavConfig

PPO_TEST_SPLIT = 1_000_002  # the environment index of the PPO runner's test episodes (ppo._Agent.episodes)
VIEW_STEPS = 5_000  # the most steps the viewer plays (Atari's limit is 4,500): against endless episodes
VECTOR_NAMES = {  # what a classic-control observation's numbers are
    "CartPole-v1": ("cart position", "cart velocity", "pole angle (rad)", "pole angular velocity"),
    "CartPole-v0": ("cart position", "cart velocity", "pole angle (rad)", "pole angular velocity"),
}
ACTION_NAMES = {"CartPole-v1": ("push left", "push right"), "CartPole-v0": ("push left", "push right")}


@dataclass
class Episode:
    """The episode the examples are steps of."""

    seed: int
    length: int
    total: float  # its return
    outcome: str  # words after the return: whether it was cut; navigation's success (a sketch's ADE / FDE)
    # and collisions


@dataclass
class Novelty:
    """RND's networks and statistics at the end of training (``checkpoints/last.ckpt``)."""

    network: nn.Module
    obs_stats: RunningMeanStd
    return_std: float  # of the discounted intrinsic returns: what the runner divides rewards by
    transition_n: int  # the queue holds the last n + 1 views
    clip: float  # the normalised views are clipped to [-clip, clip]


@dataclass
class Agent:
    """A runner's trained agent and the episode it played."""

    runner: str  # dqn | ppo
    env_id: str
    family: str  # navigation | minigrid | atari | vector
    model: nn.Module
    action_names: list[str]
    episode: Episode
    nav: NavConfig | None = None  # the navigation simulator's settings (camera, map size)
    novelty: Novelty | None = None
    no_novelty: str | None = None  # why an RND agent's intrinsic reward is not shown
    frames_to_unit: bool = False  # the network takes uint8 frames scaled to [0, 1] (DQN on Atari)

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        return network_input(obs, self.frames_to_unit)


def network_input(obs: torch.Tensor, frames_to_unit: bool) -> torch.Tensor:
    """One observation as the environment gives it -> the network's batch of one (1, ...)."""
    return obs[None] / 255.0 if frames_to_unit else obs[None]


# -- loading -------------------------------------------------------------------------------------


def load_agent(run: RunDir, spec: RunSpec) -> LoadedRun:
    """The run's agent with its final weights, in eval mode, and the steps of its first test episode."""
    with torch_threads(spec.runner_config.torch_threads):
        agent, examples = _load_dqn(run, spec) if spec.runner == "dqn" else _load_ppo(run, spec)
    return LoadedRun(None, AgentEnvironment(seed=spec.seed), examples, agent.action_names, agent)


class AgentEnvironment(DataModule):
    """An agent's stand-in for a datamodule: its inputs come from its environment, so it takes no
    uploads (the base class's one-line refusal) and has no datasets."""


def _model(run: RunDir, spec: RunSpec, kind: str, checkpoint_format: str) -> nn.Module:
    model: nn.Module = MODELS.get(spec.model_name).cls(spec.model_config)
    load_run_weights(model, run, "final", kind, checkpoint_format)
    return model.eval()


def _load_dqn(run: RunDir, spec: RunSpec) -> tuple[Agent, list[dict[str, torch.Tensor]]]:
    from attnlab.rl.dqn import CHECKPOINT_FORMAT, eval_seeds, make_dqn_env
    from attnlab.rl.envs import discrete_spaces

    env_id = spec.runner_config.env
    env = make_dqn_env(env_id)
    model = _model(run, spec, "DQN", CHECKPOINT_FORMAT)
    pixels = discrete_spaces(env, env_id).pixels  # as the runner: uint8 frames reach it in [0, 1]

    @torch.no_grad()
    def greedy(x: torch.Tensor) -> int:  # as DQN's test: the largest Q
        return int(model(network_input(x, pixels)).q_values.argmax(dim=1).item())

    seed, family = eval_seeds(spec.seed, "test", 1)[0], _family(env, env_id)
    examples, episode = _play(env, family, greedy, seed, 0, None, torch.float32)
    return _agent("dqn", env, env_id, family, model, episode, frames_to_unit=pixels), examples


def _load_ppo(run: RunDir, spec: RunSpec) -> tuple[Agent, list[dict[str, torch.Tensor]]]:
    from attnlab.rl.ppo import CHECKPOINT_FORMAT, env_kind
    from attnlab.rl.vector import episode_seed

    cfg = spec.runner_config
    env = env_kind(cfg.env).make()
    model = _model(run, spec, "PPO", CHECKPOINT_FORMAT)
    novelty, why = _novelty(run, spec, env) if cfg.intrinsic == "rnd" else (None, None)
    seed = episode_seed(spec.seed, PPO_TEST_SPLIT, 0)
    generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def sample(x: torch.Tensor) -> int:  # as PPO's test: sampled with its own seeded generator
        probs = torch.softmax(model(x[None]).logits.float(), dim=1)  # (1, A)
        return int(torch.multinomial(probs, 1, generator=generator).item())

    family = _family(env, cfg.env)
    n = cfg.transition_n if novelty is not None else None
    examples, episode = _play(env, family, sample, seed, cfg.eval_max_steps, n, None)
    agent = _agent("ppo", env, cfg.env, family, model, episode)
    agent.novelty, agent.no_novelty = novelty, why
    return agent, examples


def _novelty(run: RunDir, spec: RunSpec, env: gym.Env[Any, Any]) -> tuple[Novelty | None, str | None]:
    """RND's networks and statistics from the last checkpoint, or why they are not there."""
    from attnlab.rl.ppo import CHECKPOINT_FORMAT, OBS_CLIP, _rnd_network, env_kind

    path, cfg = run.last_checkpoint, spec.runner_config
    if not path.is_file():
        return None, f"no intrinsic reward: {path.name} (RND's networks and statistics) is missing"
    state = checked_checkpoint(safe_torch_load(path), path, "PPO", CHECKPOINT_FORMAT)
    obs_shape = tuple(env.observation_space.shape or ())
    # the runner's own construction, so that the checkpoint's keys fit
    network = _rnd_network(cfg, env_kind(cfg.env), obs_shape)
    load_state(network, dict(state["rnd"]), f"RND's networks in {path}")
    obs_stats = RunningMeanStd()
    obs_stats.load_state_dict(state["obs_stats"])
    return_std = float(torch.as_tensor(state["return_stats"]["var"]).sqrt())
    return Novelty(network.eval(), obs_stats, return_std, cfg.transition_n, OBS_CLIP), None


def _family(env: gym.Env[Any, Any], env_id: str) -> str:
    from attnlab.rl.navigation import NavigationEnv

    if isinstance(env.unwrapped, NavigationEnv):
        return "navigation"
    if env_id.startswith("MiniGrid-"):
        return "minigrid"
    shape = tuple(env.observation_space.shape or ())
    return "atari" if len(shape) == 3 else "vector"


def _agent(
    runner: str,
    env: gym.Env[Any, Any],
    env_id: str,
    family: str,
    model: nn.Module,
    episode: Episode,
    *,
    frames_to_unit: bool = False,
) -> Agent:
    count = int(env.action_space.n)  # type: ignore[attr-defined]
    names: list[str] = [str(a) for a in range(count)]
    nav = None
    if family == "navigation":
        from attnlab.rl.navigation import ACTION_NAMES as NAV_ACTIONS

        names, nav = list(NAV_ACTIONS), env.unwrapped.config  # type: ignore[attr-defined]
    elif family == "minigrid":
        from minigrid.core.actions import Actions

        names = [Actions(a).name for a in range(count)]
    elif family == "atari":
        names = [m.lower() for m in env.unwrapped.get_action_meanings()]  # type: ignore[attr-defined]
    elif env_id in ACTION_NAMES:
        names = list(ACTION_NAMES[env_id])
    return Agent(runner, env_id, family, model, names, episode, nav, frames_to_unit=frames_to_unit)


# -- the episode ---------------------------------------------------------------------------------


class _Thinned:
    """Every ``stride``-th step of an episode of unknown length, at most 2 * MAX_EXAMPLES kept:
    the stride doubles (every other kept step dropped) when they would be more."""

    def __init__(self) -> None:
        self.stride = 1
        self.kept: list[dict[str, torch.Tensor]] = []

    def wants(self, step: int) -> bool:
        return step % self.stride == 0

    def add(self, example: dict[str, torch.Tensor]) -> None:
        self.kept.append(example)
        if len(self.kept) > 2 * MAX_EXAMPLES:
            self.stride *= 2
            self.kept = self.kept[::2]  # the kept steps were the multiples of the old stride, from 0

    def spread(self) -> list[dict[str, torch.Tensor]]:
        """At most MAX_EXAMPLES of the kept steps, evenly spaced, the first step first."""
        return self.kept[:: math.ceil(len(self.kept) / MAX_EXAMPLES)] if self.kept else []


def _play(
    env: gym.Env[Any, Any],
    family: str,
    policy: Callable[[torch.Tensor], int],
    seed: int,
    limit: int,
    transition_n: int | None,
    dtype: torch.dtype | None,
) -> tuple[list[dict[str, torch.Tensor]], Episode]:
    """One episode on ``seed``: ``policy`` acts on each observation (as ``dtype``, or as the
    environment gives it); ``limit`` > 0 cuts it after that many steps, :data:`VIEW_STEPS` always.
    With ``transition_n``, each kept step holds RND's queue: the last n + 1 views, the next one last."""
    obs, info = env.reset(seed=seed)
    track = _Track(env) if family == "navigation" else None
    recent = deque([_frame(obs, family)], maxlen=(transition_n or 0) + 1)
    limit = min(limit or VIEW_STEPS, VIEW_STEPS)
    thin, total, step, ended = _Thinned(), 0.0, 0, False
    while not ended and step < limit:
        x = torch.tensor(np.asarray(obs), dtype=dtype)  # a copy: some environments reuse the array
        keep = thin.wants(step)
        seen = _pictures(env, family) if keep else {}  # of this state, before the step changes it
        action = policy(x)
        obs, reward, terminated, truncated, info = env.step(action)
        total, ended = total + float(reward), bool(terminated or truncated)
        recent.append(_frame(obs, family))
        if track is not None:
            track.add()
        if keep:
            example = {"obs": x, "step": torch.tensor(step), "action": torch.tensor(action)}
            example |= {"reward": torch.tensor(float(reward)), "return": torch.tensor(total)} | seen
            thin.add(example | (_queue(recent, transition_n) if transition_n is not None else {}))
        step += 1
    outcome = "" if ended else ", cut before its end"
    if track is not None:
        outcome += f", {track.outcome(info)}, {info['collisions']} collisions"
    return thin.spread(), Episode(seed, step, total, outcome)


class _Track:
    """The robot's positions over a navigation episode: a sketch episode is measured by ADE / FDE
    against its waypoints (:func:`attnlab.rl.navigation.displacement_errors`), a goal episode by
    success."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.batch = env.unwrapped.batch  # type: ignore[attr-defined]
        self.waypoints = self.batch.goals[0].copy()  # (K, 2): the sketch's, or the goals
        self.positions = [self.batch.pos[0].copy()]

    def add(self) -> None:
        self.positions.append(self.batch.pos[0].copy())

    def outcome(self, info: dict[str, Any]) -> str:
        if self.batch.config.sketch == "none":
            return "success" if info["success"] else "no success"
        from attnlab.rl.navigation import displacement_errors

        ade, fde = displacement_errors(np.array(self.positions), self.waypoints)
        return f"ADE {ade:.2f} m, FDE {fde:.2f} m to the sketch"


def _queue(recent: deque[torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """RND's input before normalisation: the last n + 1 views (n + 1, *frame), zeros before the
    episode's first, and which slots hold one (n + 1,), as the runner's TransitionQueue keeps them."""
    missing = n + 1 - len(recent)
    empty = torch.zeros((missing, *recent[0].shape), dtype=recent[0].dtype)
    valid = torch.tensor([False] * missing + [True] * len(recent))
    return {"queue": torch.cat([empty, torch.stack(list(recent))]), "valid": valid}


def _frame(obs: Any, family: str) -> torch.Tensor:
    """What RND sees of one observation: the newest Atari frame, else the observation (as the runner)."""
    x = torch.tensor(np.asarray(obs))
    return x[-1] if family == "atari" else x


def _raw_novelty(novelty: Novelty, example: dict[str, torch.Tensor]) -> float:
    """The predictor's error on the step's queue (n + 1, *frame) with its valid slots (n + 1,)."""
    with torch.no_grad():
        z = queue_input(example["queue"][None], example["valid"][None], novelty.obs_stats, novelty.clip)
        out = novelty.network(z)  # z: (1, n + 1, *frame)
    return float(intrinsic_reward(out.predicted, out.target)[0])


def _pictures(env: gym.Env[Any, Any], family: str) -> dict[str, torch.Tensor]:
    """What the observation does not hold: MiniGrid's renderings, the navigation view's depth."""
    if family == "minigrid":
        grid = env.unwrapped
        view = grid.get_pov_render(tile_size=16)  # type: ignore[attr-defined]  # (112, 112, 3): the 7x7 view
        whole = grid.get_full_render(True, 16)  # type: ignore[attr-defined]  # the grid, the view highlighted
        return {"view": torch.from_numpy(np.array(view)), "grid": torch.from_numpy(np.array(whole))}
    if family == "navigation":
        return {"depth": torch.from_numpy(env.unwrapped.views()[1].copy())}  # type: ignore[attr-defined]
    return {}


# -- the viewer ----------------------------------------------------------------------------------


def view_agent(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """One step of the episode: the observation, the action values or probabilities, the values,
    the rewards and, for an Action Q-Transformer, each action query's attention over the patches."""
    agent = loaded.agent
    assert agent is not None
    if method is not None:
        raise NotViewable(
            f"{method} is not offered for RL agents: the page shows the action values and, "
            "for Action Q-Transformers, the action queries' attention"
        )
    x = example["obs"]
    layers = [n for n, m in attention_layers(agent.model).items() if isinstance(m, MultiHeadAttention)]
    with torch.no_grad():
        if layers:
            with capture(agent.model, layers=layers) as record:
                out = agent.model(agent.inputs(x))
            weights = {name: record[name][0] for name in record}  # (heads, Q, K) each
        else:
            out, weights = agent.model(agent.inputs(x)), {}
    action = int(example["action"])
    scores, notes, extra = _action_values(agent, out, action)
    rewards, intrinsic = _rewards(agent, example)
    attention = _query_attention(weights, len(agent.action_names))
    maps = _attention_maps(agent, attention, scores, action)
    pictures = _extra_pictures(agent, example, attention, action)
    return (
        extra
        | intrinsic
        | {
            "input": _input(agent, example, bool(maps)),
            "prediction": _prediction(agent, scores),
            "target": None,
            "maps": maps,
            "methods": [],
            "notes": [_step_line(agent, example), *notes, *rewards, *_obs_lines(agent, x)],
            "pictures": pictures,
        }
    )


def _action_values(agent: Agent, out: Any, action: int) -> tuple[torch.Tensor, list[str], dict[str, Any]]:
    """Per action (A,): Q-values (DQN) or probabilities (PPO); the notes on them; the values as JSON."""
    name = agent.action_names[action]
    if agent.runner == "dqn":
        q = out.q_values[0].float()  # (A,)
        notes = [
            f"action: {name} (greedy: the largest Q)",
            f"value estimate V = max Q = {float(q.max()):.4f}",
        ]
        return q, notes, {"q_values": [round(float(v), 6) for v in q], "action": action}
    probs = torch.softmax(out.logits[0].float(), dim=0)  # (A,)
    value = f"value estimate: extrinsic {float(out.value_ext[0]):.4f}"
    if out.value_int is not None:
        value += f", intrinsic {float(out.value_int[0]):.4f}"
    notes = [
        f"action: {name} (sampled from the policy, p = {float(probs[action]):.3f}, as the test does)",
        value,
    ]
    return probs, notes, {"policy": [round(float(p), 6) for p in probs], "action": action}


def _prediction(agent: Agent, scores: torch.Tensor) -> list[dict[str, Any]]:
    """The actions, best first: Q-values in the label (they are no probabilities), or probabilities."""
    order = scores.argsort(descending=True).tolist()
    if agent.runner == "dqn":
        return [{"label": f"{agent.action_names[a]} Q={float(scores[a]):.3f}", "p": None} for a in order]
    return [{"label": agent.action_names[a], "p": round(float(scores[a]), 4)} for a in order]


def _query_attention(weights: dict[str, torch.Tensor], actions: int) -> dict[str, torch.Tensor]:
    """The layers where one query per action attends over a square grid of keys: (heads, A, K) each."""
    found = {}
    for name, w in weights.items():
        queries, keys = w.shape[-2:]
        side = math.isqrt(keys)
        if queries == actions and keys != queries and side * side == keys:
            found[name] = w
    return found


def _attention_maps(
    agent: Agent, attention: dict[str, torch.Tensor], scores: torch.Tensor, action: int
) -> list[dict[str, Any]]:
    """Per layer, one map per action query (the chosen action's first), its heads as the heads."""
    maps = []
    order = [action, *(a for a in range(len(agent.action_names)) if a != action)]
    for layer, w in attention.items():  # (heads, A, K)
        side = math.isqrt(w.shape[-1])
        for a in order:
            chosen = " (chosen)" if a == action else ""
            name = f"{layer}: '{agent.action_names[a]}' query{chosen}, Q={float(scores[a]):.3f}"
            maps.append({"name": name, "shape": [side, side], "heads": [unit(head[a]) for head in w]})
    return maps


def _input(agent: Agent, example: dict[str, torch.Tensor], maps: bool) -> dict[str, Any]:
    """The observation as a picture: an "image" where maps are drawn over it, else a "view"."""
    x, kind = example["obs"], "image" if maps else "view"
    if agent.family == "navigation":
        assert agent.nav is not None
        view = semantic_view(agent.nav, x)
        return {
            "kind": kind,
            "png": rgb_png(view),
            "shape": list(view.shape[:2]),
            "caption": "semantic view",
        }
    if agent.family == "minigrid":
        view = example["view"].numpy()
        return {"kind": kind, "png": rgb_png(view), "shape": list(view.shape[:2]), "caption": "7x7 view"}
    if agent.family == "atari":
        caption = "the newest of the stacked frames"
        return {"kind": kind, "png": png_url(x[-1:]), "shape": list(x.shape[-2:]), "caption": caption}
    rows = x.float()[None]  # (1, D): one column per number
    return {"kind": "sequence", "png": png_url(rows), "shape": list(rows.shape)}


def _step_line(agent: Agent, example: dict[str, torch.Tensor]) -> str:
    e = agent.episode
    return (
        f"step {int(example['step'])} of the first test episode (seed {e.seed}): "
        f"{e.length} steps, return {e.total:.3f}{e.outcome}"
    )


def _rewards(agent: Agent, example: dict[str, torch.Tensor]) -> tuple[list[str], dict[str, Any]]:
    """The step's reward and, with RND, its intrinsic reward: as notes, and as JSON."""
    lines = [f"reward: {float(example['reward']):+.4f} (return so far {float(example['return']):.3f})"]
    if agent.no_novelty is not None:
        lines.append(agent.no_novelty)
    n = agent.novelty
    if n is None:
        return lines, {}
    raw = _raw_novelty(n, example)
    seen = (
        "the next view" if n.transition_n == 0 else f"the last {n.transition_n + 1} views, the next one last"
    )
    lines.append(
        f"intrinsic reward (RND on {seen}): {raw / n.return_std:.4f} = predictor error {raw:.5f} / "
        f"{n.return_std:.5f}, the running std of intrinsic returns at the end of training"
    )
    return lines, {"intrinsic_reward": {"raw": raw, "normalised": raw / n.return_std}}


def _obs_lines(agent: Agent, x: torch.Tensor) -> list[str]:
    """The observation's numbers where they are few: the navigation goal, a vector's entries."""
    if agent.family == "navigation" and agent.nav is not None:
        distance, sin, cos = x[-GOAL_FEATURES:].tolist()
        bearing = math.degrees(math.atan2(sin, cos))
        side = "left" if bearing >= 0 else "right"
        return [f"goal: {distance * agent.nav.map_size:.2f} m away, {abs(bearing):.0f} degrees to the {side}"]
    if agent.family == "vector":
        names = VECTOR_NAMES.get(agent.env_id, tuple(f"obs[{i}]" for i in range(x.numel())))
        return ["observation: " + ", ".join(f"{n} {float(v):.4f}" for n, v in zip(names, x, strict=False))]
    return []


def _extra_pictures(
    agent: Agent, example: dict[str, torch.Tensor], attention: dict[str, torch.Tensor], action: int
) -> list[dict[str, Any]]:
    if agent.family == "minigrid":
        return [{"png": rgb_png(example["grid"].numpy()), "caption": "the whole grid (the view highlighted)"}]
    if agent.family == "atari":
        frames = example["obs"]  # (F, H, W): oldest first
        return [
            {"png": png_url(torch.cat(list(frames), dim=1)), "caption": "the stacked frames, oldest first"}
        ]
    if agent.family != "navigation" or "depth" not in example:
        return []
    depth = example["depth"]
    pictures = [{"png": png_url(depth), "caption": "depth (dark near, bright far)"}]
    weights, what = None, "the semantic colours"
    if attention:
        layer, w = list(attention.items())[-1]  # the layer nearest the Q head
        weights = w[:, action].mean(dim=0)  # (K,): the chosen action's query, heads averaged
        what = f"the chosen action's attention ({layer}, heads averaged)"
    assert agent.nav is not None
    cloud = depth_cloud(agent.nav, example["obs"], depth, weights)
    caption = (
        f"the depth view as points from above (robot at the bottom centre, facing up), coloured by {what}"
    )
    return [*pictures, {"png": rgb_png(cloud), "caption": caption}]
