"""Every shipped recipe runs end to end: a two-step smoke run through the real command."""

import json
import math
from pathlib import Path

import pytest
import yaml

from attnlab.cli import main
from attnlab.data.fashion_mnist import DEFAULT_ROOT
from attnlab.recipes import list_recipes, recipe_path

SMOKE = [
    "--trainer.max_steps",
    "2",
    "--trainer.val_every",
    "2",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.limit_test_batches",
    "1",
    "--trainer.progress_bar",
    "false",
    "--data.batch_size",
    "4",
    "--data.eval_batch_size",
    "8",
]


# Generated CLEVRER-lite: 8 + 4 + 4 videos (not the recipes' 800), one folder for every recipe of the session.
CLEVRER_DATA = ("clevrer-lite", "clevrer-qa")
CLEVRER_SMOKE = ["--data.train_size", "8", "--data.val_size", "4", "--data.test_size", "4"]

# Moving Fashion-MNIST's frozen probes: 16 clips and 2 steps each, not the recipe's 2048 and 300.
PROBE_SMOKE = ["--data.probe_size", "16", "--task.probe.steps", "2"]

# Self-supervised Fashion-MNIST (DINO, MAE): a k-NN bank of 16 images, not the recipes' 5000.
KNN_SMOKE = ["--data.knn_size", "16"]

# Two digit domains (StarGAN v2): 64 rendered training digits, 16 per domain and split (not 20,000, 500).
DIGITS_SMOKE = ["--data.source_train", "64", "--data.val_size", "16", "--data.test_size", "16"]


def recipe_data(recipe: str) -> dict:
    return (yaml.safe_load(recipe_path(recipe).read_text()) or {}).get("data") or {}


def needs_missing_data(recipe: str) -> str | None:
    """Why the recipe cannot run here (data that is not installed, a run it builds on), or None."""
    data = recipe_data(recipe)
    if (
        data.get("name") in ("fashion-mnist", "moving-fmnist", "fashion-mnist-ssl")
        and not Path(DEFAULT_ROOT).is_dir()
    ):
        return f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)"
    return None


def builds_on_runs(section: object) -> bool:
    """Does a recipe section name a run folder as a sub-model's ``init_from`` (at any depth)?"""
    if isinstance(section, dict):
        return bool(section.get("init_from")) or any(builds_on_runs(v) for v in section.values())
    return False


def smoke_run_elsewhere(recipe: str) -> bool:
    """Recipes these smoke runs leave out (rather than skip): slot recipes read an encoder run's
    latents (tests/train/test_video_qa.py runs one on an SFA run it trains), recipes whose models
    start from other runs (teachers: tests/train/test_distill.py runs them on presets), and recipes
    of other runners take other keys than the Lightning smoke overrides above (tests/rl/ runs them)."""
    data = recipe_data(recipe)
    full = yaml.safe_load(recipe_path(recipe).read_text()) or {}
    runner = full.get("runner", "lightning")
    slots = data.get("name") == "clevrer-qa" and data.get("encoder", "oracle") not in ("oracle", "frames")
    return slots or builds_on_runs(full.get("model")) or runner != "lightning"


@pytest.fixture(scope="session")
def clevrer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clevrer_lite")


@pytest.mark.parametrize("recipe", sorted(r for r in list_recipes() if not smoke_run_elsewhere(r)))
def test_recipe_smoke_run(recipe: str, tmp_path: Path, clevrer_cache: Path):
    reason = needs_missing_data(recipe)
    if reason:
        pytest.skip(reason)
    run_dir = tmp_path / recipe
    clevrer = recipe_data(recipe).get("name") in CLEVRER_DATA
    extra = [*CLEVRER_SMOKE, "--data.cache_dir", str(clevrer_cache)] if clevrer else []
    if recipe_data(recipe).get("name") == "moving-fmnist":
        extra = PROBE_SMOKE
    if recipe_data(recipe).get("name") == "fashion-mnist-ssl":
        extra = KNN_SMOKE
    if recipe_data(recipe).get("name") == "digit-domains":
        extra = DIGITS_SMOKE
    assert main(["run", recipe, "--run-dir", str(run_dir), *SMOKE, *extra]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test/loss"])
    assert (run_dir / "report.md").is_file() and any((run_dir / "figures").glob("*.png"))


def test_every_recipe_has_a_description():
    assert all(description for description in list_recipes().values())
