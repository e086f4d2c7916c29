"""Every registered model: builds, runs without NaN, trains every parameter, is deterministic in eval."""

import dataclasses

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models import create_model, list_models, model_entry

# Presets of the official checkpoints' size whose example input is a 1,024 px image: a training step
# needs tens of GB, so they run with -m slow; the same code runs here at sam-small-reference's size,
# and their parameter names and shapes are checked on the meta device (tests/models/sam,
# tests/commands/test_import_sam.py).
HEAVY = {"sam-vit-b", "sam-vit-l", "sam-vit-h"}
PRESETS = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in list_models()]


def tensors_of(output: object) -> dict[str, torch.Tensor]:
    assert dataclasses.is_dataclass(output), "forward must return a dataclass"
    return {
        f.name: getattr(output, f.name)
        for f in dataclasses.fields(output)
        if isinstance(getattr(output, f.name), torch.Tensor)
    }


@pytest.mark.parametrize("name", PRESETS)
def test_every_model_runs_finite_trains_every_parameter_and_is_deterministic_in_eval(name: str):
    model = create_model(name)
    inputs = model.example_inputs(batch_size=2)
    outputs = tensors_of(model(**inputs))
    assert outputs
    for key, value in outputs.items():
        assert torch.isfinite(value).all(), key
    sum(v.float().square().mean() for v in outputs.values()).backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:  # frozen parts (V-JEPA's EMA target encoder) must stay untouched
            assert p.grad is None, pname
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    model.eval()
    with torch.no_grad():
        first, second = tensors_of(model(**inputs)), tensors_of(model(**inputs))
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.mark.parametrize("name", PRESETS)
def test_preset_config_matches_the_model(name: str):
    entry = model_entry(name)
    assert create_model(name).config == entry.config


def test_overrides_are_checked():
    assert create_model("transformer-classifier-tiny", depth=3).config.depth == 3
    with pytest.raises(ConfigError, match="did you mean 'depth'"):
        create_model("transformer-classifier-tiny", dept=3)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("transformer-classifier-huge")
