"""The StarGAN v2 task: the reference's four updates per batch (D twice, G+F+E (+C), G), one global
step per batch, the class-aware terms logged, and a kill -9 resume equal to an uninterrupted run."""

from pathlib import Path

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

DIGITS = [
    "--data.source_train",
    "64",
    "--data.val_size",
    "16",
    "--data.test_size",
    "16",
    "--data.batch_size",
    "4",
]


def test_each_batch_steps_d_twice_g_twice_and_f_e_c_once(tmp_path: Path):
    run_dir = tmp_path / "ca"
    args = ["--trainer.max_steps", "3", "--trainer.val_every", "3", "--trainer.checkpoint_every", "3",
            "--trainer.log_every", "1"]  # fmt: skip
    assert (
        main(["run", "stargan2_class_aware-digits", "--run-dir", str(run_dir), *SMALL, *args, *DIGITS]) == 0
    )
    checkpoint = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    # in the recipe's order: discriminator, generator, mapping_network, style_encoder, classifier
    steps = [int(next(iter(s["state"].values()))["step"]) for s in checkpoint["optimizer_states"]]
    assert steps == [6, 6, 3, 3, 3]
    tags = set(read_scalars(run_dir / "tb"))
    assert {
        "train/d_latent/reg", "train/d_reference/fake", "train/g_latent/task", "train/g_latent/sem",
        "train/g_latent/ds", "train/g_reference/cyc", "train/lambda_ds",
    } <= tags  # fmt: skip
    assert "train/g_reference/task" not in tags  # C's terms only with the latent-guided update
    metrics = metrics_of(run_dir)
    for key in ("loss", "cyc", "d_real", "class_acc_source", "class_acc_target", "class_kept"):
        assert f"test/{key}" in metrics, key
    assert (run_dir / "figures/translations_target.png").is_file()


def test_the_ema_moves_towards_the_trained_networks(tmp_path: Path):
    run_dir = tmp_path / "plain"
    assert (
        main(
            ["run", "stargan2-digits", "--run-dir", str(run_dir), *SMALL, "--trainer.max_steps", "2", *DIGITS]
        )
        == 0
    )
    state = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
    online, ema = state["model.generator.from_rgb.weight"], state["model.ema.generator.from_rgb.weight"]
    assert not torch.equal(online, ema)  # both moved apart from their shared start ...
    assert (ema - online).abs().max() < 1e-2  # ... by 2 steps at beta 0.999: the EMA trails closely


def test_kill_9_then_resume_equals_an_uninterrupted_stargan2_run(tmp_path: Path):
    args = ["run", "stargan2-digits", "--trainer.max_steps", "16", "--trainer.checkpoint_every", "4",
            "--trainer.val_every", "16", *SMALL, *DIGITS]  # fmt: skip
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert attnlab(*args, "--run-dir", str(full)).returncode == 0
    kill_9_after_first_checkpoint(args, killed)
    resumed = attnlab("resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_run(full, killed)
