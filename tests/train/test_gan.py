"""The GAN recipe: two optimisers with manual optimisation, ragged dataclass batches, exact resume."""

from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.train.report import read_scalars
from tests.train.conftest import (
    SMALL,
    assert_same_final_run,
    attnlab,
    kill_9_after_first_checkpoint,
    metrics_of,
)


def global_step(run_dir: Path) -> int:
    return torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"]


def test_gan_run_counts_one_step_per_batch_and_logs_each_optimiser(tmp_path: Path):
    run_dir = tmp_path / "gan"
    args = ["--trainer.max_steps", "20", "--trainer.val_every", "10", "--trainer.checkpoint_every", "5"]
    assert main(["run", "gan-points", "--run-dir", str(run_dir), *args, *SMALL]) == 0
    assert global_step(run_dir) == 20  # not 40: two optimiser steps per batch count once
    metrics = metrics_of(run_dir)
    for key in ("high_quality", "modes", "floor/high_quality", "data/high_quality", "generator/loss", "loss"):
        assert f"test/{key}" in metrics, key
    assert metrics["test/data/high_quality"] > 0.95 and metrics["test/data/modes"] == 8
    tags = set(read_scalars(run_dir / "tb"))
    assert {"train/discriminator/real", "train/discriminator/fake", "train/generator/adv"} <= tags
    assert {
        "train/discriminator/loss",
        "train/generator/loss",
        "lr-discriminator/pg1",
        "lr-generator/pg1",
    } <= tags
    assert (run_dir / "figures/samples.png").is_file()


def test_non_finite_gan_loss_names_the_optimiser_and_term(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(
        ["run", "gan-points", "--run-dir", str(tmp_path / "r"), "--optim.discriminator.lr", "1e30",
         "--trainer.max_steps", "50", *SMALL]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 3
    # the blown-up discriminator turns the generator's term into NaN: named with its optimiser
    assert "training stopped at step 0: non-finite loss term 'generator/adv' = nan" in err
    assert "Traceback" not in err


def test_kill_9_then_resume_equals_an_uninterrupted_gan_run(tmp_path: Path):
    args = ["run", "gan-points", "--trainer.max_steps", "300", "--trainer.checkpoint_every", "10",
            "--trainer.val_every", "100", *SMALL]  # fmt: skip
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0

    kill_9_after_first_checkpoint(args, killed)
    step = global_step(killed)
    assert 0 < step < 300 and step % 10 == 0  # checkpoint_every counts batches

    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert global_step(killed) == global_step(full) == 300
    assert_same_final_run(full, killed)


@pytest.mark.slow
def test_the_gan_recipe_clearly_beats_its_floor(tmp_path: Path):
    run_dir = tmp_path / "gan"
    assert main(["run", "gan-points", "--run-dir", str(run_dir), "--trainer.progress_bar", "false"]) == 0
    m = metrics_of(run_dir)
    assert m["test/floor/high_quality"] < 0.05 and m["test/floor/modes"] <= 1
    assert m["test/high_quality"] > 0.5 and m["test/modes"] >= 6


def test_gan_ddp_on_two_cpu_processes(tmp_path: Path):
    run_dir = tmp_path / "ddp"
    done = attnlab(
        "run", "gan-points", "--run-dir", str(run_dir), "--trainer.accelerator", "cpu", "--devices", "2",
        "--trainer.strategy", "ddp_find_unused_parameters_true", "--trainer.max_steps", "6",
        "--trainer.val_every", "3", *SMALL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert global_step(run_dir) == 6
