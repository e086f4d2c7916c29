"""The RL agents' viewer on a DQN agent that plays Atari from frames (aqt-breakout): the network gets
the frames scaled to [0, 1] as the runner gives them, and each action query's attention over the 7x7
grid is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file

from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from attnlab.models.rl.aqt import ActionQTransformer, AQTConfig
from tests.explorer.conftest import view

pytest.importorskip("ale_py")

TINY = ["--trainer.max_steps", "16", "--trainer.val_every", "16", "--trainer.checkpoint_every", "16"]
TINY += ["--trainer.progress_bar", "false", "--dqn.learning_starts", "8", "--dqn.batch_size", "4"]
TINY += ["--dqn.buffer_size", "64", "--dqn.eval_episodes", "1", "--model.hidden_size", "16"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("atari")
    assert main(["run", "aqt-breakout", "--run-dir", str(root / "breakout"), *TINY]) == 0
    return root


def test_aqt_breakout_shows_q_values_of_the_scaled_frames_and_each_actions_attention(runs: Path):
    got = view(TestClient(create_app(runs)), "breakout", index=0)
    frames = load_run(runs / "breakout").examples[0]["obs"]  # (4, 84, 84) as the environment gives them
    assert frames.shape == (4, 84, 84) and frames.max() > 1
    model = ActionQTransformer(AQTConfig(num_actions=4, hidden_size=16))
    model.load_state_dict(load_file(runs / "breakout" / "model.safetensors"))
    with torch.no_grad():
        q = model.eval()(frames[None] / 255.0).q_values[0]
    assert got["q_values"] == pytest.approx(q.tolist(), abs=1e-5)
    assert got["input"]["kind"] == "image" and got["input"]["shape"] == [84, 84]
    assert len(got["maps"]) == 4 and all(m["shape"] == [7, 7] for m in got["maps"])
    assert {p["label"].split(" Q=")[0] for p in got["prediction"]} == {"noop", "fire", "right", "left"}
