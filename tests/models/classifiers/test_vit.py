"""The ViT image classifier: shapes, attention capture, input checks, its preset and recipe."""

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.classifiers.vit import VisionTransformer, ViTConfig
from attnlab.models.outputs import ClassifierOutput
from attnlab.recipes import recipe_path
from attnlab.runs.spec import resolve

SMALL = ViTConfig(image_size=8, patch_size=2, in_chans=1, num_classes=3, dim=8, depth=2, num_heads=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def test_forward_shapes_and_every_layer_is_captured():
    model = VisionTransformer(SMALL).eval()
    x = torch.randn(3, 1, 8, 8)
    with capture(model) as rec:
        out = model(x)
    assert isinstance(out, ClassifierOutput)
    assert out.logits.shape == (3, 3) and out.features.shape == (3, 8)
    assert list(rec) == ["blocks.0.attn", "blocks.1.attn"]
    assert rec["blocks.1.attn"].shape == (3, 2, 17, 17)  # [CLS] + 4x4 patches
    assert torch.equal(model(x).logits, out.logits)  # capture does not change the prediction


def test_every_parameter_trains_and_other_image_sizes_interpolate_positions():
    model = VisionTransformer(SMALL)
    model(**model.example_inputs(2)).logits.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model(torch.randn(1, 1, 12, 6)).logits.shape == (1, 3)


def test_examples_do_not_interact_in_eval():
    model = VisionTransformer(SMALL).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        batched = model(x).logits
        single = torch.cat([model(x[i : i + 1]).logits for i in range(4)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_bad_configs_and_inputs_are_one_line_errors():
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        VisionTransformer(ViTConfig(image_size=10, patch_size=4))
    with pytest.raises(ConfigError, match="num_heads"):
        VisionTransformer(ViTConfig(dim=10, num_heads=4))
    model = VisionTransformer(SMALL)
    with pytest.raises(InputError, match="multiples of"):
        model(torch.randn(1, 1, 9, 8))
    with pytest.raises(InputError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(1, 3, 8, 8))


def test_preset_and_recipe():
    model = create_model("vit-tiny-fashion")
    c = model.config
    assert (c.image_size, c.patch_size, c.in_chans, c.dim, c.depth, c.num_heads) == (28, 4, 1, 64, 4, 4)
    assert model(**model.example_inputs(2)).logits.shape == (2, 10)
    spec = resolve(recipe_path("vit-fashion_mnist"), [])
    assert (spec.task_name, spec.model_name) == ("classification", "vit-tiny-fashion")
    assert spec.data_name == "fashion-mnist"
    assert spec.optim.name == "adamw"
