"""Several optimisers: the recipe's optim mapping, its checks, and the manual-optimisation protocol."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from attnlab.cli import main
from attnlab.data.points import PointSets, RingPointsData
from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.recipes import recipe_path
from attnlab.runs.config import NamedOptimConfig, OptimConfig
from attnlab.runs.spec import resolve
from attnlab.train.gan import GANTask
from attnlab.train.optim import partition

GAN = recipe_path("gan-points")


def write_recipe(tmp_path: Path, optim: object, **changes: object) -> Path:
    recipe = yaml.safe_load(GAN.read_text()) | {"optim": optim} | changes
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_named_optimisers_parse_typed_with_overrides():
    spec = resolve(GAN, ["--optim.generator.lr", "5e-4", "--optim.discriminator.betas", "[0.0, 0.9]"])
    assert list(spec.optim) == ["discriminator", "generator"]
    gen, disc = spec.optim["generator"], spec.optim["discriminator"]
    assert isinstance(gen, NamedOptimConfig) and gen.name == "adam" and gen.lr == 5e-4
    assert disc.betas == (0.0, 0.9) and gen.betas == (0.5, 0.999)


def test_saved_config_resolves_to_the_same_optimisers(tmp_path: Path):
    spec = resolve(GAN, ["--optim.generator.lr", "5e-4"])
    saved = tmp_path / "config.yaml"
    saved.write_text(spec.yaml_text)
    assert resolve(saved, []).optim == spec.optim


def test_a_single_optimiser_is_unchanged():
    spec = resolve(recipe_path("demo"), ["--optim.lr", "0.01"])
    assert isinstance(spec.optim, OptimConfig) and not isinstance(spec.optim, NamedOptimConfig)
    assert spec.optim.lr == 0.01 and spec.optim.betas == (0.9, 0.999)


@pytest.mark.parametrize(
    ("optim", "overrides", "message"),
    [
        (None, ["--optim.generator.lrr", "1"], "'optim.generator.lrr' (did you mean 'optim.generator.lr'?)"),
        ({"generator": {"beta": [0.5, 0.9]}, "discriminator": {}}, [], "mean 'optim.generator.betas'?)"),
        (None, ["--optim.generatr.lr", "1"], "did you mean 'optim.generator.lr'?"),
        ({"generator": {"lr": 1e-3}, "lr": 0.1}, [], "optim mixes named optimisers with plain keys (lr)"),
        (None, ["--optim.generator.name", "adamm"], "optim.generator.name"),
        (None, ["--trainer.gradient_clip_val", "1.0"], "or trainer.gradient_clip_val"),
        (None, ["--trainer.strategy", "ddp"], "use --trainer.strategy ddp_find_unused_parameters_true"),
    ],
)  # fmt: skip
def test_optim_mapping_errors_are_one_line(tmp_path: Path, optim: object, overrides: list[str], message: str):
    path = GAN if optim is None else write_recipe(tmp_path, optim)
    with pytest.raises(ConfigError) as info:
        resolve(path, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def named(**params: object) -> dict[str, NamedOptimConfig]:
    return {name: NamedOptimConfig(params=p) for name, p in params.items()}  # type: ignore[arg-type]


def test_partition_gives_each_optimiser_its_parameters():
    model = create_model("toy-gan")
    owned = partition(model, named(generator=None, discriminator="discriminator"))
    assert {id(p) for p in owned["generator"]} == {id(p) for p in model.generator.parameters()}
    assert {id(p) for p in owned["discriminator"]} == {id(p) for p in model.discriminator.parameters()}
    model = create_model("transformer-classifier-tiny")
    owned = partition(model, named(body=["blocks", "embed", "cls_token", "pos_embed"], head=["norm", "head"]))
    assert sum(len(v) for v in owned.values()) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("optims", "message"),
    [
        (
            named(generator="genrator", discriminator=None),
            "optim.generator.params: the model has no submodule or parameter 'genrator' "
            "(did you mean 'generator'?); top level: generator, discriminator",
        ),
        (
            named(generator=None, discriminator=["discriminator", "generator.net.0"]),
            "parameter 'generator.net.0.weight' is owned by optim.generator and optim.discriminator",
        ),
        (
            named(generator=None, critic="discriminator.net.0"),
            "no optimiser owns parameter 'discriminator.net.2.weight', 'discriminator.net.2.bias', "
            "'discriminator.net.4.weight' and 3 more",
        ),
    ],
)
def test_partition_errors(optims: dict[str, NamedOptimConfig], message: str):
    with pytest.raises(ConfigError) as info:
        partition(create_model("toy-gan"), optims)
    assert str(info.value).startswith(message)


def test_gan_task_checks_its_optimisers():
    model = create_model("toy-gan")
    with pytest.raises(ConfigError, match="give optim as a mapping"):
        GANTask(model=model, optim=OptimConfig())
    with pytest.raises(
        ConfigError, match=r"unknown optimiser 'optim.generatr' \(did you mean 'generator'\?\)"
    ):
        GANTask(model=model, optim=named(generatr="generator", discriminator=None))
    with pytest.raises(ConfigError, match="optim has no 'generator' optimiser"):
        GANTask(model=model, optim=named(discriminator=["discriminator", "generator"]))


def test_cli_reports_a_bad_params_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(["run", "gan-points", "--run-dir", str(tmp_path / "r"), "--optim.generator.params", "gen"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "optim.generator.params: the model has no submodule or parameter 'gen'" in err


class Snapshots(L.Callback):
    """Every parameter before each optimiser step, and at the end of each batch."""

    def __init__(self) -> None:
        self.states: list[tuple[str, dict[str, torch.Tensor]]] = []
        self.batches: list[object] = []

    def _snap(self, module: L.LightningModule, label: str) -> None:
        self.states.append((label, {n: p.detach().clone() for n, p in module.model.named_parameters()}))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(batch)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        owner = "discriminator" if optimizer is pl_module.optimizers()[0].optimizer else "generator"
        self._snap(pl_module, f"before {owner}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._snap(pl_module, "end")


def fit_gan(max_steps: int, callback: L.Callback) -> tuple[L.Trainer, GANTask]:
    spec = resolve(GAN, [])
    L.seed_everything(0, verbose=False)
    task = GANTask(model=create_model("toy-gan"), optim=spec.optim)
    data = RingPointsData(seed=0, batch_size=8, val_size=16, test_size=16)
    trainer = L.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[callback],
    )
    trainer.fit(task, datamodule=data)
    return trainer, task


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
    return {n for n in a if not torch.equal(a[n], b[n])}


def test_each_optimiser_updates_only_its_own_parameters_and_a_batch_is_one_step():
    snaps = Snapshots()
    trainer, task = fit_gan(3, snaps)
    labels = [label for label, _ in snaps.states]
    assert labels == ["before discriminator", "before generator", "end"] * 3
    names = [n for n, _ in task.model.named_parameters()]
    disc = {n for n in names if n.startswith("discriminator.")}
    for i in range(0, 9, 3):
        before_d, before_g, end = (state for _, state in snaps.states[i : i + 3])
        assert changed(before_d, before_g) == disc  # the discriminator's step moved all of it, nothing else
        assert changed(before_g, end) == set(names) - disc  # the generator's step: the generator only
    # Lightning would count two steps per batch; the protocol counts one
    assert trainer.global_step == 3
    assert [
        opt.optimizer.state[p]["step"] for opt in task.optimizers() for p in list(opt.optimizer.state)[:1]
    ] == [3, 3]
    assert [s.last_epoch for s in task.lr_schedulers()] == [3, 3]


def test_dataclass_batches_reach_the_task_intact():
    snaps = Snapshots()
    fit_gan(2, snaps)
    for step, batch in enumerate(snaps.batches):
        assert isinstance(batch, PointSets) and len(batch.sets) == 8
        assert batch.index.tolist() == list(range(8 * step, 8 * step + 8))  # the sampler's order
        expected = RingPointsData(seed=0).dataset("train")
        for i, points in zip(batch.index.tolist(), batch.sets, strict=True):
            assert torch.equal(points, expected[i].points)


def test_any_task_can_give_parts_of_the_model_their_own_optimiser(tmp_path: Path):
    """A task without optimizer_names: one loss, one backward, every optimiser steps; one step per batch."""
    recipe = yaml.safe_load(recipe_path("demo").read_text())
    recipe["optim"] = {
        "body": {"name": "adamw", "lr": 3e-3, "params": ["blocks", "embed", "cls_token", "pos_embed"]},
        "head": {"name": "sgd", "lr": 0.1, "schedule": "constant", "params": ["norm", "head"]},
    }
    path = tmp_path / "demo-two-optimisers.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run_dir = tmp_path / "run"
    args = ["--trainer.max_steps", "6", "--trainer.val_every", "3", "--trainer.checkpoint_every", "3"]
    small = ["--data.val_size", "64", "--data.test_size", "64", "--trainer.progress_bar", "false"]
    assert main(["run", str(path), "--run-dir", str(run_dir), *args, *small]) == 0
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 6
    assert [len(o["state"]) > 0 for o in ckpt["optimizer_states"]] == [True, True]
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [6, 6]
    assert json.loads((run_dir / "metrics.json").read_text())["test/loss"] < 100
