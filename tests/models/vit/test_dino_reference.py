"""The shared ImageViT against facebookresearch/dino's tiny ViT golden (``shared/reference/dino``,
README there): weights through the one official loader, then every output at the README's
tolerances (atol 1e-5; 1e-6 on attention; the official fp32-vs-fp64 spread is 1e-6 and 3e-7)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.explain import capture
from attnlab.models.vit.image_vit import ImageViT, ImageViTConfig
from attnlab.runs.official import load_official_vit
from tests._goldens import load, reference

ACT = 1e-5
ATTN = 1e-6
TINY = ImageViTConfig(img_size=32, patch_size=8, dim=64, depth=2, num_heads=4, mlp_ratio=4.0)


@pytest.fixture(scope="module")
def golden() -> dict:
    return load("dino", "dino_vit_tiny_golden.pt")


@pytest.fixture(scope="module")
def model() -> ImageViT:
    # the golden file nests the state dict under 'state_dict', which the loader unwraps
    return load_official_vit(reference("dino") / "dino_vit_tiny_golden.pt", TINY).eval()


def test_every_key_loads_and_qkv_is_split_in_order(model: ImageViT, golden: dict):
    official = golden["state_dict"]
    qkv = official["blocks.1.attn.qkv.weight"]  # (192, 64): q, k, v rows
    assert torch.equal(model.blocks[1].attn.q_proj.weight, qkv[:64])
    assert torch.equal(model.blocks[1].attn.kv_proj.weight, qkv[64:])
    assert torch.equal(model.pos_embed, official["pos_embed"])
    assert torch.equal(model.cls_token, official["cls_token"])


@torch.no_grad()
def test_tokens_cls_output_and_intermediate_layers(model: ImageViT, golden: dict):
    x = golden["input"]
    torch.testing.assert_close(model.prepare_tokens(x), golden["out/tokens_prepared"], atol=ACT, rtol=0)
    torch.testing.assert_close(model(x)[:, 0], golden["out/cls"], atol=ACT, rtol=0)
    layers = torch.stack(model.intermediate_layers(x, n=2))  # (2 layers, B, 17, D)
    torch.testing.assert_close(layers, golden["out/intermediate_n2"], atol=ACT, rtol=0)


@torch.no_grad()
def test_last_selfattention_and_capture_record_the_same_maps(model: ImageViT, golden: dict):
    x = golden["input"]
    expected = golden["out/last_selfattention"]
    torch.testing.assert_close(model.last_selfattention(x), expected, atol=ATTN, rtol=0)
    with capture(model) as rec:
        model(x)
    assert list(rec) == ["blocks.0.attn", "blocks.1.attn"]
    torch.testing.assert_close(rec["blocks.1.attn"], expected, atol=ATTN, rtol=0)
    maps = model.cls_attention(x)  # (B, heads, 4, 4): row r, column c is patch 4r + c
    torch.testing.assert_close(maps[:, :, 1, 2], expected[:, :, 0, 1 + 6], atol=ATTN, rtol=0)
    ns = model.cls_attention(golden["input_nonsquare_40x56"])  # 5 x 7 patches
    torch.testing.assert_close(
        ns[:, :, 4, 1], golden["out/ns_last_selfattention"][:, :, 0, 1 + 29], atol=ATTN, rtol=0
    )


@torch.no_grad()
def test_non_square_input_interpolates_positions_as_dino(model: ImageViT, golden: dict):
    x = golden["input_nonsquare_40x56"]  # 5 x 7 patches from a 4 x 4 table
    assert model.check_images(x) == (5, 7)
    torch.testing.assert_close(model.positions((5, 7)), golden["out/ns_pos_embed"], atol=ACT, rtol=0)
    torch.testing.assert_close(model(x)[:, 0], golden["out/ns_cls"], atol=ACT, rtol=0)
    torch.testing.assert_close(
        model.last_selfattention(x), golden["out/ns_last_selfattention"], atol=ATTN, rtol=0
    )


@torch.no_grad()
def test_the_golden_tells_the_plus_point_one_scale_factor_from_a_plain_resize(model: ImageViT, golden: dict):
    """Resizing to the output size (no +0.1 quirk) or swapping height and width misses the golden,
    so the match above is the quirk's, not any bicubic resize's."""
    table = model.pos_embed[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)  # (1, D, 4, 4)
    plain = F.interpolate(table, size=(5, 7), mode="bicubic").permute(0, 2, 3, 1).reshape(1, 35, 64)
    assert (plain - golden["out/ns_pos_embed"][:, 1:]).abs().max() > 100 * ACT
    swapped = model.positions((7, 5))[:, 1:].reshape(1, 7, 5, 64).transpose(1, 2).reshape(1, 35, 64)
    assert (swapped - golden["out/ns_pos_embed"][:, 1:]).abs().max() > 100 * ACT
    torch.testing.assert_close(model.positions((5, 7))[:, :1], model.pos_embed[:, :1], atol=0, rtol=0)
