"""The PPO runner (with RND and transition-RND) end to end through the `attnlab` command: run
folder, evaluate, every PPO recipe's smoke run, user errors and exact resume after kill -9."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.recipes import recipe_path
from attnlab.rl.atari_envs import make_atari
from attnlab.rl.ppo import _Agent
from attnlab.runs.spec import resolve
from tests.train.conftest import assert_same_final_run, attnlab, kill_9_after_first_checkpoint, metrics_of

# Two environments, rollouts of 32 steps: four updates, one checkpoint, two evaluation episodes.
TINY = [
    "--trainer.max_steps",
    "256",
    "--trainer.val_every",
    "128",
    "--trainer.checkpoint_every",
    "128",
    "--trainer.log_every",
    "64",
    "--trainer.progress_bar",
    "false",
    "--ppo.num_envs",
    "2",
    "--ppo.num_steps",
    "32",
    "--ppo.minibatches",
    "2",
    "--ppo.epochs",
    "2",
    "--ppo.eval_episodes",
    "2",
    "--ppo.eval_max_steps",
    "50",
    "--ppo.obs_norm_warmup",
    "1",
]


def atari_available() -> bool:
    try:
        make_atari("ALE/Breakout-v5").close()
    except ConfigError:
        return False
    return True


@pytest.fixture(scope="session")
def trnd_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "trnd"
    assert main(["run", "trnd-minigrid", "--run-dir", str(run_dir), *TINY]) == 0
    return run_dir


def test_run_writes_a_complete_run_folder_with_rnd_state(trnd_run: Path):
    for name in (
        "config.yaml",
        "model.safetensors",
        "report.md",
        "checkpoints/last.ckpt",
        "checkpoints/best.ckpt",
    ):
        assert (trnd_run / name).is_file(), name
    assert json.loads((trnd_run / "run.json").read_text())["state"] == "finished"
    assert set(metrics_of(trnd_run)) == {
        "test/return",
        "test/return_std",
        "test/cells_per_episode",
        "test/random_policy_return",
        "test/random_policy_return_std",
        "test/random_policy_cells_per_episode",
    }
    assert "runner: ppo" in (trnd_run / "config.yaml").read_text()
    ckpt = torch.load(trnd_run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["step"] == 256
    assert {"rnd", "obs_stats", "return_stats", "reward_filter", "queue", "envs"} <= set(ckpt)
    assert ckpt["queue"]["frames"].shape == (2, 5, 980)  # n = 4: five queued views per environment
    assert ckpt["reward_filter"]["returns"].shape == (2,)
    assert float(ckpt["obs_stats"]["count"]) > 64  # the warm-up and four rollouts


def test_evaluate_reproduces_the_final_metrics(trnd_run: Path):
    assert main(["evaluate", str(trnd_run)]) == 0
    again = json.loads(next((trnd_run / "evaluations").glob("final-*.json")).read_text())
    assert again == metrics_of(trnd_run)


@pytest.mark.parametrize("recipe", ["ppo-minigrid", "rnd-minigrid"])
def test_minigrid_recipe_smoke_run(recipe: str, tmp_path: Path):
    assert main(["run", recipe, "--run-dir", str(tmp_path / recipe), *TINY]) == 0
    assert (tmp_path / recipe / "report.md").is_file()


# rnd-montezuma differs from trnd-montezuma only in n (the unit tests cover the queue)
@pytest.mark.parametrize("recipe", ["ppo-breakout", "trnd-montezuma"])
def test_atari_recipe_smoke_run(recipe: str, tmp_path: Path):
    if not atari_available():
        pytest.skip("ale-py cannot create Atari environments here")
    args = [
        "--trainer.max_steps",
        "8",
        "--ppo.num_envs",
        "1",
        "--ppo.num_steps",
        "8",
        "--ppo.minibatches",
        "2",
    ]
    args += [
        "--ppo.epochs",
        "1",
        "--ppo.eval_episodes",
        "1",
        "--ppo.eval_max_steps",
        "5",
        "--ppo.obs_norm_warmup",
        "1",
    ]
    args += ["--trainer.progress_bar", "false", "--trainer.accelerator", "cpu"]
    assert main(["run", recipe, "--run-dir", str(tmp_path / recipe), *args]) == 0
    metrics = metrics_of(tmp_path / recipe)
    assert ("test/rooms_per_episode" in metrics) == ("montezuma" in recipe)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ppo.env", "MiniGrid-DoorKey-5x5-v9"], "unknown MiniGrid environment 'MiniGrid-DoorKey-5x5-v9'"),
        (["--ppo.env", "Pong"], "unknown environment 'Pong'; valid: ALE/Breakout-v5"),
        (["--ppo.transition_n", "-1"], "ppo.transition_n must be >= 0 (0 is plain RND), got -1"),
        (["--model.intrinsic_head", "false"], "ppo.intrinsic is rnd needs model.intrinsic_head = True"),
        (["--model.obs_dim", "147"], "environment 'MiniGrid-DoorKey-5x5-v0' needs model.obs_dim = 980"),
        (["--ppo.minibatches", "3"], "ppo.minibatches (3) must divide num_envs * num_steps (64)"),
        (["--trainer.devices", "2"], "runner 'ppo' does not support trainer.devices"),
    ],
)
def test_user_errors_are_one_line_and_leave_no_run_folder(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run_dir = tmp_path / "r"
    assert main(["run", "trnd-minigrid", "--run-dir", str(run_dir), *TINY, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not run_dir.exists()


def test_an_unknown_environment_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert (
        main(["run", "trnd-minigrid", "--run-dir", str(tmp_path / "r"), *TINY, "--ppo.env", "Nope-v0"]) == 2
    )
    err = capsys.readouterr().err
    assert "valid: ALE/Breakout-v5, ALE/MontezumaRevenge-v5, ALE/Venture-v5, MiniGrid-" in err


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    """Mid-episode checkpoints: the environments are replayed, the queues, statistics and filter restored."""
    args = ["run", "trnd-minigrid", *TINY, "--trainer.max_steps", "2048", "--trainer.checkpoint_every", "256"]
    args += ["--trainer.val_every", "1024", "--ppo.num_envs", "4"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0

    kill_9_after_first_checkpoint(args, killed)
    step = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["step"]
    assert 0 < step < 2048

    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
    a = torch.load(full / "checkpoints/last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)
    for key in a["rnd"]:
        assert torch.equal(a["rnd"][key], b["rnd"][key]), key
    assert torch.equal(a["reward_filter"]["returns"], b["reward_filter"]["returns"])
    assert torch.equal(a["obs_stats"]["var"], b["obs_stats"]["var"])
    assert torch.equal(a["queue"]["frames"], b["queue"]["frames"])


def test_a_rollout_stores_the_observations_the_policy_acted_on(tmp_path: Path):
    """The log-probabilities recomputed from the stored observations are the ones of the actions
    taken, and the queue of step t ends with step t + 1's observation (unless the episode ended)."""
    spec = resolve(recipe_path("trnd-minigrid"), TINY)
    agent = _Agent(spec)
    with SummaryWriter(tmp_path / "tb") as writer:
        rollout = agent.collect(writer)
    with torch.no_grad():
        logits = agent.model(rollout.obs.flatten(0, 1)).logits  # (T * N, A)
    log_probs = torch.log_softmax(logits, dim=1).gather(1, rollout.actions.flatten(0, 1)[:, None]).squeeze(1)
    assert torch.allclose(log_probs, rollout.log_probs.flatten(0, 1), atol=1e-5)
    going_on = ~rollout.dones[:-1]  # (T - 1, N)
    assert going_on.any()
    assert torch.equal(rollout.queues[:-1, :, -1][going_on], rollout.obs[1:][going_on])
    # the queue holds the previous observations in order: slot -2 of step t is slot -1 of step t - 1
    same_episode = going_on[:-1] & going_on[1:]
    assert torch.equal(rollout.queues[2:, :, -2][same_episode], rollout.queues[1:-1, :, -1][same_episode])
