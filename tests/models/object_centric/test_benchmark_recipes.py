"""The object-centric benchmark times each small recipe's real training step (the GPU study's
step counts come from it, so a recipe it cannot build would waste a device call)."""

import pytest
import torch
import yaml
from benchmarks.object_centric import recipe_task

from attnlab.recipes import recipe_path

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "recipe", ["sfa-sprites_small", "vimon-sprites_small", "attn-vimon-sprites_small", "monet-sprites_small"]
)
def test_the_benchmark_builds_each_recipe_as_it_trains(recipe):
    config = yaml.safe_load(recipe_path(recipe).read_text())
    task, batch, lr = recipe_task(recipe, torch.device("cpu"), channels_last=False)
    data = config["data"]
    assert batch["video"].shape == (data["batch_size"], data["num_frames"], 3, 32, 32)
    assert lr == config["optim"]["lr"]
    assert task.likelihood == config["task"]["likelihood"]
    assert task.model.config.num_slots == config["model"]["num_slots"]
    loss = torch.stack(list(task.loss_terms(batch).values())).sum()
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in task.model.decoder.parameters())
