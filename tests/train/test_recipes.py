"""Every shipped recipe runs end to end: a two-step smoke run through the real command."""

import json
import math
from pathlib import Path

import pytest

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


def needs_missing_data(recipe: str) -> bool:
    return "name: fashion-mnist" in recipe_path(recipe).read_text() and not Path(DEFAULT_ROOT).is_dir()


@pytest.mark.parametrize("recipe", sorted(list_recipes()))
def test_recipe_smoke_run(recipe: str, tmp_path: Path):
    if needs_missing_data(recipe):
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    run_dir = tmp_path / recipe
    assert main(["run", recipe, "--run-dir", str(run_dir), *SMOKE]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test/loss"])
    assert (run_dir / "report.md").is_file() and any((run_dir / "figures").glob("*.png"))


def test_every_recipe_has_a_description():
    assert all(description for description in list_recipes().values())
