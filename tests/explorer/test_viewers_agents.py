"""The RL agents' viewer (``runner: dqn`` / ``ppo``), checked against the networks rebuilt from the
run's files and run directly on the same observation: the navigation AQT's Q-values and each action
query's cross-attention, transition-RND's policy, values and intrinsic reward, CartPole's Q-values;
the episode is the runner's first test episode, the same at every load; and the one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file

from attnlab.explain.capture import capture
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from attnlab.models import create_model
from tests.explorer.conftest import scaled, view

pytest.importorskip("gymnasium")
pytest.importorskip("minigrid")

QUICK = ["--trainer.max_steps", "16", "--trainer.val_every", "16", "--trainer.checkpoint_every", "16"]
QUICK += ["--trainer.log_every", "8", "--trainer.progress_bar", "false"]
DQN = [
    "--dqn.learning_starts",
    "8",
    "--dqn.batch_size",
    "4",
    "--dqn.buffer_size",
    "64",
    "--dqn.train_every",
    "2",
]
DQN += ["--dqn.target_sync_every", "8", "--dqn.eval_episodes", "1"]
PPO = ["--ppo.num_envs", "2", "--ppo.num_steps", "8", "--ppo.minibatches", "2", "--ppo.epochs", "1"]
PPO += [
    "--ppo.obs_norm_warmup",
    "1",
    "--ppo.eval_episodes",
    "1",
    "--ppo.eval_max_steps",
    "24",
]  # < 32 steps: all kept
TRAINED = {  # run folder -> recipe and its overrides: a few steps, one test episode
    "aqt": ["aqt-nav", *DQN],
    "trnd": ["trnd-minigrid", *PPO],  # transition-RND: queues of 5 views
    "cartpole": ["dqn-cartpole", *DQN],
    "sketch": ["aqt_sketch-nav", *DQN],  # sketch mode: measured by ADE / FDE, not success
}
CROSS = "decoder.layers.0.cross_attn"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("agents")
    for name, (recipe, *overrides) in TRAINED.items():
        assert main(["run", recipe, "--run-dir", str(root / name), *QUICK, *overrides]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def test_aqt_shows_the_q_values_and_each_action_querys_attention(client: TestClient, runs: Path):
    from attnlab.rl.dqn import eval_seeds
    from attnlab.rl.navigation import make_navigation

    got = view(client, "aqt", index=0)
    obs, _ = make_navigation("attnlab/Nav-v0").reset(seed=eval_seeds(0, "test", 1)[0])
    assert torch.equal(load_run(runs / "aqt").examples[0]["obs"], torch.from_numpy(obs))  # the test's seed
    model = create_model("aqt-nav")
    model.load_state_dict(load_file(runs / "aqt" / "model.safetensors"))
    with torch.no_grad(), capture(model.eval(), layers=[CROSS]) as record:
        q = model(torch.from_numpy(obs)[None]).q_values[0]
    attention = record[CROSS][0]  # (heads, 4 actions, 144 patches)
    chosen = int(q.argmax())
    assert got["q_values"] == pytest.approx(q.tolist(), abs=1e-5) and got["action"] == chosen
    names = ["stop", "forward", "turn left", "turn right"]
    assert got["prediction"][0]["label"] == f"{names[chosen]} Q={float(q[chosen]):.3f}"
    assert got["input"]["kind"] == "image" and got["input"]["shape"] == [84, 84] and got["methods"] == []
    order = [chosen, *(a for a in range(4) if a != chosen)]
    assert [m["name"] for m in got["maps"]] == [
        f"{CROSS}: '{names[a]}' query{' (chosen)' if a == chosen else ''}, Q={float(q[a]):.3f}" for a in order
    ]
    for shown, a in zip(got["maps"], order, strict=True):
        assert shown["shape"] == [12, 12] and len(shown["heads"]) == attention.shape[0]
        for head, expected in zip(shown["heads"], attention[:, a], strict=True):
            assert torch.tensor(head, dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)
    assert any("coloured by the chosen action's attention" in p["caption"] for p in got["pictures"])


def test_the_episode_is_the_runners_first_test_episode_at_every_load(runs: Path):
    for name in TRAINED:
        first, second = load_run(runs / name), load_run(runs / name)
        assert first is not second and len(first.examples) == len(second.examples) > 1
        for a, b in zip(first.examples, second.examples, strict=True):
            assert torch.equal(a["obs"], b["obs"]) and int(a["action"]) == int(b["action"])
        metrics = json.loads((runs / name / "metrics.json").read_text())
        assert first.agent is not None  # the runner's test return of its one episode is this episode's
        assert first.agent.episode.total == pytest.approx(metrics["test/return"], abs=1e-5)


def test_navigation_episodes_say_success_or_their_distance_to_the_sketch(runs: Path):
    from attnlab.rl.navigation import displacement_errors, make_navigation

    goal = load_run(runs / "aqt").agent
    sketch = load_run(runs / "sketch").agent
    assert goal is not None and sketch is not None
    assert "success" in goal.episode.outcome and "ADE" not in goal.episode.outcome
    assert "success" not in sketch.episode.outcome
    # the same numbers from the episode replayed by hand: the start, then every step's position
    env = make_navigation("attnlab/NavSketch-v0")
    obs, _ = env.reset(seed=sketch.episode.seed)
    batch = env.unwrapped.batch
    waypoints, positions = batch.goals[0].copy(), [batch.pos[0].copy()]
    model = sketch.model.eval()
    for _ in range(sketch.episode.length):
        with torch.no_grad():
            action = int(model(torch.from_numpy(obs)[None]).q_values[0].argmax())
        obs, *_ = env.step(action)
        positions.append(batch.pos[0].copy())
    ade, fde = displacement_errors(np.array(positions), waypoints)
    assert f"ADE {ade:.2f} m, FDE {fde:.2f} m to the sketch" in sketch.episode.outcome


def test_transition_rnd_shows_the_policy_the_values_and_the_intrinsic_reward(client: TestClient, runs: Path):
    got = view(client, "trnd", index=2)
    examples = load_run(runs / "trnd").examples
    assert [int(e["step"]) for e in examples[:4]] == [0, 1, 2, 3]
    model = create_model("ppo-mlp", intrinsic_head=True)
    model.load_state_dict(load_file(runs / "trnd" / "model.safetensors"))
    with torch.no_grad():
        out = model.eval()(examples[2]["obs"][None])
    probs = out.logits.softmax(-1)[0]
    assert got["policy"] == pytest.approx(probs.tolist(), abs=1e-5)
    assert got["prediction"][0]["p"] == pytest.approx(float(probs.max()), abs=1e-4)
    assert (
        f"value estimate: extrinsic {float(out.value_ext[0]):.4f}, intrinsic {float(out.value_int[0]):.4f}"
        in (got["notes"])
    )
    # the queue after step 2 ends with the next view: (empty, views 0, 1, 2, 3), normalised by hand
    state = torch.load(runs / "trnd" / "checkpoints" / "last.ckpt", weights_only=False)
    rnd = create_model("rnd-mlp", obs_dim=980, frames=5, hidden_dim=256, feature_dim=128)
    rnd.load_state_dict(state["rnd"])
    views = torch.stack([torch.zeros(980), *(e["obs"] for e in examples[:4])]).double()  # (5, 980)
    stats = state["obs_stats"]
    z = ((views - stats["mean"]) / stats["var"].sqrt()).clamp(-5, 5).float()
    z[0] = 0  # the empty slot
    with torch.no_grad():
        features = rnd(z[None])
    raw = float((features.predicted - features.target).square().mean())
    std = float(state["return_stats"]["var"].sqrt())
    assert got["intrinsic_reward"]["raw"] == pytest.approx(raw, rel=1e-4)
    assert got["intrinsic_reward"]["normalised"] == pytest.approx(raw / std, rel=1e-4)
    assert got["input"]["kind"] == "view" and got["maps"] == [] and len(got["pictures"]) == 1


def test_cartpole_shows_its_four_numbers_and_q_values(client: TestClient, runs: Path):
    got = view(client, "cartpole", index=1)
    x = load_run(runs / "cartpole").examples[1]["obs"]
    model = create_model("q-mlp", obs_dim=4, num_actions=2, hidden_dim=128, depth=2)
    model.load_state_dict(load_file(runs / "cartpole" / "model.safetensors"))
    with torch.no_grad():
        q = model.eval()(x[None]).q_values[0]
    assert got["q_values"] == pytest.approx(q.tolist(), abs=1e-5)
    assert got["input"]["kind"] == "sequence" and got["input"]["shape"] == [1, 4]
    numbers = next(line for line in got["notes"] if line.startswith("observation: cart position"))
    assert f"pole angle (rad) {float(x[2]):.4f}" in numbers
    assert {p["label"].split(" Q=")[0] for p in got["prediction"]} == {"push left", "push right"}


@pytest.mark.parametrize(
    ("run", "method", "message"),
    [
        ("aqt", "gradcam", "gradcam is not offered for RL agents"),
        ("trnd", "rollout", "rollout is not offered"),
    ],
)
def test_a_method_asked_of_an_agent_is_one_line(client: TestClient, run: str, method: str, message: str):
    response = client.get("/api/view", params={"id": run, "index": "0", "method": method})
    assert response.status_code == 422 and message in response.json()["detail"]
    assert "\n" not in response.json()["detail"]


def test_an_agent_takes_no_uploads(client: TestClient):
    assert "upload" not in view(client, "aqt")
    picture = (
        "data:image/png;base64,"
        + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
    )
    response = client.post("/api/view/upload", json={"id": "aqt", "file": picture, "name": "a.png"})
    assert response.status_code == 422 and "takes no uploads" in response.json()["detail"]


@pytest.mark.parametrize("run", list(TRAINED))
def test_the_examples_are_every_kth_step_over_the_whole_episode(runs: Path, run: str):
    loaded = load_run(runs / run)
    assert loaded.agent is not None
    steps, length = np.array([int(e["step"]) for e in loaded.examples]), loaded.agent.episode.length
    (stride,) = set(np.diff(steps).tolist())
    assert 1 < len(steps) <= 32 and steps[0] == 0 and length - 2 * stride <= steps[-1] < length
