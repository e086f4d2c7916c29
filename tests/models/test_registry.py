"""Every registered model: builds, runs without NaN, trains every parameter, is deterministic in eval."""

import dataclasses

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models import create_model, list_models, model_entry


def tensors_of(output: object) -> dict[str, torch.Tensor]:
    assert dataclasses.is_dataclass(output), "forward must return a dataclass"
    return {
        f.name: getattr(output, f.name)
        for f in dataclasses.fields(output)
        if isinstance(getattr(output, f.name), torch.Tensor)
    }


@pytest.mark.parametrize("name", list_models())
def test_forward_finite_and_every_parameter_trains(name: str):
    model = create_model(name)
    outputs = tensors_of(model(**model.example_inputs(batch_size=2)))
    assert outputs
    for key, value in outputs.items():
        assert torch.isfinite(value).all(), key
    sum(v.float().square().mean() for v in outputs.values()).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list_models())
def test_eval_is_deterministic(name: str):
    model = create_model(name).eval()
    inputs = model.example_inputs(batch_size=2)
    first, second = tensors_of(model(**inputs)), tensors_of(model(**inputs))
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.mark.parametrize("name", list_models())
def test_preset_config_matches_the_model(name: str):
    entry = model_entry(name)
    assert create_model(name).config == entry.config


def test_overrides_are_checked():
    assert create_model("transformer-classifier-tiny", depth=3).config.depth == 3
    with pytest.raises(ConfigError, match="did you mean 'depth'"):
        create_model("transformer-classifier-tiny", dept=3)
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("transformer-classifier-huge")
