"""The aqt-breakout recipe end to end on a tiny budget: Atari frames through the DQN runner with
Rainbow's parts, the per-action attention picture, evaluation that reproduces the test, and a model
whose frames do not match the environment's refused in one line."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.models.rl.aqt import ActionQTransformer, AQTConfig
from attnlab.rl.atari_attention import frame_attention
from tests.train.conftest import metrics_of

pytest.importorskip("ale_py")

TINY = [
    "--trainer.max_steps", "120",
    "--trainer.val_every", "120",
    "--trainer.checkpoint_every", "60",
    "--trainer.log_every", "20",
    "--trainer.progress_bar", "false",
    "--dqn.learning_starts", "40",
    "--dqn.buffer_size", "200",
    "--dqn.batch_size", "4",
    "--dqn.eval_episodes", "1",
    "--model.hidden_size", "16",
]  # fmt: skip


def test_aqt_breakout_trains_reports_and_draws_each_actions_attention(tmp_path: Path):
    run_dir = tmp_path / "aqt"
    assert main(["run", "aqt-breakout", "--run-dir", str(run_dir), *TINY]) == 0
    metrics = metrics_of(run_dir)
    assert {"test/return", "test/random_policy_return"} <= set(metrics)
    assert (run_dir / "figures/action_attention.png").stat().st_size > 10_000
    assert "action_attention.png" in (run_dir / "report.md").read_text()
    last = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    replay = last["replay"]
    assert replay["obs_bytes"].dtype == torch.uint8 and replay["obs_bytes"].shape[1] == 4 * 84 * 84
    assert replay["horizons"].max() == 3 and "priorities" in last
    assert main(["evaluate", str(run_dir)]) == 0  # eval_epsilon draws from its own generator
    again = json.loads(next((run_dir / "evaluations").glob("final-*.json")).read_text())
    assert again == metrics


def test_frames_of_another_shape_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["run", "aqt-breakout", "--run-dir", str(tmp_path / "r"), *TINY, "--model.in_channels", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "environment 'ALE/Breakout-v5' gives frames (4, 84, 84) but model aqt-atari takes (3, 84, 84)" in err
    )
    assert len(err.splitlines()) == 1


def test_the_attention_maps_are_distributions_over_the_grid_beside_the_models_q_values():
    torch.manual_seed(0)
    model = ActionQTransformer(AQTConfig(num_actions=4, hidden_size=16))
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 84, 84), dtype=np.uint8)
    maps, q = frame_attention(model, frames)
    assert maps.shape == (4, 7, 7) and q.shape == (4,)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)  # each query's weights over 49 cells
    with torch.no_grad():
        expected = model(torch.as_tensor(frames, dtype=torch.float32)[None] / 255.0).q_values[0].numpy()
    np.testing.assert_allclose(q, expected, rtol=1e-6)
