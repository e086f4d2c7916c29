"""ImageViT shapes, positions and bad input (the official numbers are in test_dino_reference.py)."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain import capture
from attnlab.models.vit.image_vit import ImageViT, ImageViTConfig, mae_sincos_table

SMALL = ImageViTConfig(img_size=16, patch_size=4, in_chans=1, dim=32, depth=2, num_heads=4)


def build(**overrides: object) -> ImageViT:
    torch.manual_seed(0)
    config = ImageViTConfig(**{**SMALL.__dict__, **overrides})  # type: ignore[arg-type]
    return ImageViT(config).eval()


@pytest.mark.parametrize("cls_token", [True, False])
@pytest.mark.parametrize("pos_embed", ["learned", "sincos2d"])
def test_shapes_with_and_without_cls_on_square_and_non_square_images(cls_token: bool, pos_embed: str):
    model = build(cls_token=cls_token, pos_embed=pos_embed)
    p = int(cls_token)
    assert model.num_prefix_tokens == p
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, p + 16, 32)
    assert model(torch.randn(2, 1, 12, 20)).shape == (2, p + 15, 32)  # 3 x 5 patches
    assert model.last_selfattention(torch.randn(2, 1, 12, 20)).shape == (2, 4, p + 15, p + 15)


@torch.no_grad()
def test_keeping_a_permutation_of_every_patch_permutes_the_outputs():
    """Blocks are permutation-equivariant and positions are added before the gather, so a kept
    permutation of all patches gives the full forward's tokens in that order: checks keep, the
    gather and that [CLS] stays first with its own position."""
    model = build()
    x = torch.randn(2, 1, 16, 16)
    perm = torch.stack([torch.randperm(16), torch.randperm(16)])  # (B, 16)
    full, kept = model(x), model(x, perm)
    torch.testing.assert_close(kept[:, 0], full[:, 0])
    torch.testing.assert_close(kept[:, 1:], torch.gather(full[:, 1:], 1, perm[..., None].expand(-1, -1, 32)))
    assert model(x, perm[:, :5]).shape == (2, 6, 32)


@torch.no_grad()
def test_last_selfattention_is_what_capture_records_and_rows_sum_to_one():
    model = build(cls_token=False)
    x = torch.randn(2, 1, 16, 16)
    with capture(model) as rec:
        model(x)
    attn = model.last_selfattention(x)
    torch.testing.assert_close(attn, rec["blocks.1.attn"])
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, 16))
    with pytest.raises(ConfigError, match=r"cls_attention needs a \[CLS\] token"):
        model.cls_attention(x)


def test_sincos_table_is_column_first_and_evaluated_at_another_grid():
    table = mae_sincos_table((3, 5), 8, cls_token=True)  # (1, 16, 8)
    assert torch.equal(table[0, 0], torch.zeros(8))
    row, col = 2, 4
    token = table[0, 1 + row * 5 + col]
    omega = [1 / 10000 ** (i / 2) for i in range(2)]  # D/2 = 4 channels per axis: 2 sin, 2 cos
    expected = [math.sin(col * w) for w in omega] + [math.cos(col * w) for w in omega]
    expected += [math.sin(row * w) for w in omega] + [math.cos(row * w) for w in omega]
    torch.testing.assert_close(token, torch.tensor(expected), atol=1e-6, rtol=0)
    model = build(pos_embed="sincos2d", dim=8, num_heads=2)
    torch.testing.assert_close(model.positions((3, 5)), table)
    assert "pos_embed" in model.state_dict()  # official checkpoints carry the table


def test_learned_table_at_its_own_grid_is_the_parameter_and_gets_gradients():
    model = build()
    assert model.positions((4, 4)) is model.pos_embed
    model.train()
    model(torch.randn(1, 1, 12, 20)).sum().backward()  # interpolated: gradients reach the table
    assert model.pos_embed.grad is not None and model.pos_embed.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"img_size": 18}, "img_size=18 must be a positive multiple of patch_size=4"),
        ({"num_heads": 5}, "dim=32 must be divisible by num_heads=5"),
        ({"pos_embed": "rope"}, "pos_embed must be 'learned' or 'sincos2d', got 'rope'"),
        ({"pos_embed": "sincos2d", "dim": 6, "num_heads": 2}, "needs dim divisible by 4"),
    ],
)
def test_bad_configs_are_one_line(overrides: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.randn(2, 3, 16, 16), r"images must be floating \(B, C=1, H, W\)"),
        (torch.randn(1, 16, 16), r"images must be floating"),
        (torch.zeros(2, 1, 16, 16, dtype=torch.uint8), r"images must be floating"),
        (torch.randn(2, 1, 16, 18), r"image size \(H, W\)=\(16, 18\) must be positive multiples of"),
    ],
)
def test_bad_images_are_one_line(images: torch.Tensor, message: str):
    with pytest.raises(InputError, match=message) as err:
        build()(images)
    assert "\n" not in str(err.value)


def test_bad_keep_and_layer_counts_are_one_line():
    model, x = build(), torch.randn(2, 1, 16, 16)
    with pytest.raises(InputError, match=r"mask indices must lie in \[0, 16\), got \[0, 16\]"):
        model(x, torch.tensor([[0, 16], [1, 2]]))
    with pytest.raises(InputError, match="a mask must be int64"):
        model(x, torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(InputError, match=r"n must be in \[1, depth=2\], got 3"):
        model.intermediate_layers(x, n=3)
