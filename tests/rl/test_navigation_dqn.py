"""DQN on the navigation simulator: the byte replay buffer against the float one, and the runner
end to end (success rate, collisions and the random policy's in the metrics)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.rl.navigation_replay import ByteReplayBuffer
from attnlab.rl.replay import ReplayBuffer
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint, metrics_of


def transitions(
    n: int, dim: int, byte_dim: int, seed: int
) -> list[tuple[np.ndarray, int, float, np.ndarray, bool]]:
    rng = np.random.default_rng(seed)

    def obs() -> np.ndarray:
        return np.concatenate([rng.integers(0, 5, byte_dim), rng.normal(size=dim - byte_dim)]).astype(
            np.float32
        )

    return [
        (obs(), int(rng.integers(4)), float(rng.normal()), obs(), bool(rng.random() < 0.1)) for _ in range(n)
    ]


def test_byte_buffer_samples_what_the_float_buffer_samples():
    data = transitions(30, 12, 9, 0)
    ours, ref = ByteReplayBuffer(20, 12, 9), ReplayBuffer(20, 12)  # wraps around once
    for t in data:
        ours.add(*t)
        ref.add(*t)
    a, b = ours.sample(16, np.random.default_rng(1)), ref.sample(16, np.random.default_rng(1))
    for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert ours.obs_bytes.dtype == torch.uint8 and len(ours) == 20


def test_byte_buffer_state_round_trip_and_errors():
    buffer = ByteReplayBuffer(10, 6, 4)
    for t in transitions(7, 6, 4, 2):
        buffer.add(*t)
    copy = ByteReplayBuffer(10, 6, 4)
    copy.load_state_dict(buffer.state_dict())
    a, b = buffer.sample(8, np.random.default_rng(3)), copy.sample(8, np.random.default_rng(3))
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs)
    with pytest.raises(ConfigError, match="does not fit this one"):
        ByteReplayBuffer(11, 6, 4).load_state_dict(buffer.state_dict())
    with pytest.raises(ConfigError, match="integers in \\[0, 255\\]"):
        buffer.add(np.full(6, 0.5, dtype=np.float32), 0, 0.0, np.zeros(6, dtype=np.float32), False)


@pytest.mark.parametrize("recipe", ["aqt-nav", "cnn_dqn-nav"])
def test_the_recipes_train_and_report_success_against_a_random_policy(recipe: str, tmp_path: Path):
    run_dir = tmp_path / recipe
    args = ["--trainer.max_steps", "150", "--trainer.val_every", "150", "--trainer.checkpoint_every", "100"]
    args += ["--trainer.progress_bar", "false", "--dqn.learning_starts", "50", "--dqn.eval_episodes", "2"]
    args += ["--dqn.buffer_size", "200", "--dqn.batch_size", "8"]
    assert main(["run", recipe, "--run-dir", str(run_dir), *args]) == 0
    metrics = metrics_of(run_dir)
    for key in ("success_rate", "collisions", "return", "length"):
        assert f"test/{key}" in metrics and f"test/random_policy_{key}" in metrics
    assert 0.0 <= metrics["test/success_rate"] <= 1.0
    last = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert last["replay"]["obs_bytes"].dtype == torch.uint8
    report = (run_dir / "report.md").read_text()
    clouds = recipe == "aqt-nav"  # the depth-point pictures read the action queries' attention
    for picture in (
        "figures/action_attention.png",
        "figures/attention_cloud.png",
        "figures/attention_cloud.gif",
    ):
        assert (picture in report) == clouds and (run_dir / picture).is_file() == clouds


def test_an_unknown_navigation_id_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["run", "aqt-nav", "--run-dir", str(tmp_path / "r"), "--dqn.env", "attnlab/Nav-v9"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown navigation environment 'attnlab/Nav-v9'" in err and "attnlab/NavOneRoom-v0" in err
    assert len(err.splitlines()) == 1


def test_kill_9_then_resume_equals_an_uninterrupted_navigation_run(tmp_path: Path):
    args = ["run", "cnn_dqn-nav", "--trainer.max_steps", "250", "--trainer.checkpoint_every", "40"]
    args += ["--trainer.val_every", "250", "--trainer.progress_bar", "false", "--dqn.learning_starts", "30"]
    args += ["--dqn.eval_episodes", "1", "--dqn.buffer_size", "500", "--dqn.batch_size", "4"]
    args += ["--dqn.target_sync_every", "50", "--model.hidden_dim", "16"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0
    kill_9_after_first_checkpoint(args, killed)
    assert 0 < torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["step"] < 250
    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
    a = torch.load(full / "checkpoints/last.ckpt", weights_only=True)["replay"]
    b = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["replay"]
    assert torch.equal(a["obs_bytes"], b["obs_bytes"]) and torch.equal(a["next_rest"], b["next_rest"])
