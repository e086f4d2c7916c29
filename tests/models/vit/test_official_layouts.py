"""The official ViT-S/8 DINO and ViT-B/16 MAE checkpoints' key layouts (``shared/reference``) map
onto our models completely: every key renamed, split and shape-checked against a model built on
the meta device (no weights allocated); a checkpoint of another architecture is one line."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.vit import image_vit, mae
from attnlab.runs.convert import rename_keys
from attnlab.runs.official import load_official_mae, load_official_vit, split_fused_qkv
from attnlab.state_dicts import check_state_dict
from tests._goldens import key_shapes, load, meta_state

TINY_VIT = image_vit.ImageViTConfig(img_size=32, patch_size=8, dim=64, depth=2, num_heads=4)


def fits(model: torch.nn.Module, shapes: dict, rules: list) -> None:
    state, origin = rename_keys(split_fused_qkv(meta_state(shapes)), rules)
    check_state_dict(model.state_dict(), state, "key list", origin=origin)


def test_dino_vit_small_patch8_maps_key_for_key():
    shapes = key_shapes("dino", "dino_keys.txt", prefix="vit_small_patch8.")
    assert len(shapes) == 4 + 12 * 12 + 2  # cls, pos, patch w/b; 12 blocks x 12; norm w/b
    assert shapes["pos_embed"] == (1, 785, 384)  # 28 x 28 patches of 224 px at patch 8, + cls
    with torch.device("meta"):
        model = image_vit.ImageViT(image_vit.DINO_VIT_S8)
    fits(model, shapes, image_vit.OFFICIAL_KEYS)


def test_dino_training_checkpoint_head_is_dropped_from_the_backbone():
    shapes = {f"head.{k}": s for k, s in key_shapes("dino", "dino_keys.txt", prefix="dino_head.").items()}
    shapes |= key_shapes("dino", "dino_keys.txt", prefix="vit.")
    with torch.device("meta"):
        model = image_vit.ImageViT(TINY_VIT)
    fits(model, shapes, image_vit.OFFICIAL_KEYS)


def test_mae_vit_base_maps_key_for_key_and_its_encoder_into_an_image_vit():
    shapes = key_shapes("mae", "mae_vit_base_patch16_dec512d8b_keys.txt")
    with torch.device("meta"):
        model = mae.MAE(mae.MAE_VIT_BASE)
        encoder = image_vit.ImageViT(image_vit.MAE_VIT_B16)
    fits(model, shapes, mae.OFFICIAL_KEYS)
    fits(encoder, shapes, image_vit.OFFICIAL_KEYS)  # decoder and mask token dropped


def test_mae_tiny_key_list_is_the_golden_state_dicts():
    shapes = key_shapes("mae", "mae_tiny_keys.txt")
    with torch.device("meta"):
        model = mae.MAE(mae.MAE_REFERENCE)
    fits(model, shapes, mae.OFFICIAL_KEYS)


def test_a_mismatched_config_names_the_shapes_in_one_line():
    shapes = key_shapes("dino", "dino_keys.txt", prefix="vit_small_patch8.")
    with torch.device("meta"):
        model = image_vit.ImageViT(image_vit.DINO_VIT_S16)  # patch 16: other conv and table
    with pytest.raises(InputError, match=r"of another shape \(patch_embed.proj.weight has shape") as err:
        fits(model, shapes, image_vit.OFFICIAL_KEYS)
    assert "\n" not in str(err.value)


def test_a_checkpoint_of_another_architecture_is_one_line(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(10, 4)}, path)
    for attempt in (
        lambda: load_official_vit(path, TINY_VIT),
        lambda: load_official_mae(path, mae.MAE_REFERENCE),
    ):
        with pytest.raises(InputError, match=r"is not a ViT checkpoint.*conv1\.weight") as err:
            attempt()
        assert "\n" not in str(err.value)


def test_an_encoder_only_checkpoint_is_not_a_whole_mae(tmp_path):
    shapes = key_shapes("mae", "mae_tiny_keys.txt")
    encoder = {k: torch.zeros(s) for k, s in shapes.items() if not k.startswith(("decoder", "mask_token"))}
    path = tmp_path / "encoder.pth"
    torch.save({"model": encoder}, path)
    with pytest.raises(InputError, match=r"does not fit the model: \d+ missing keys \(decoder_"):
        load_official_mae(path, mae.MAE_REFERENCE)
    config = image_vit.ImageViTConfig(
        img_size=32, patch_size=4, dim=64, depth=2, num_heads=4, pos_embed="sincos2d"
    )
    vit = load_official_vit(path, config)  # the same file is a whole encoder
    assert torch.equal(vit.cls_token, torch.zeros(1, 1, 64))


def test_dino_training_checkpoint_loads_the_teacher_backbone(tmp_path):
    golden = load("dino", "dino_vit_tiny_golden.pt")["state_dict"]
    student = {f"module.backbone.{k}": torch.zeros_like(v) for k, v in golden.items()}
    teacher = {f"backbone.{k}": v for k, v in golden.items()}
    teacher["head.last_layer.weight_g"] = torch.ones(32, 1)  # DINO's head: not the backbone's
    path = tmp_path / "checkpoint.pth"
    torch.save({"student": student, "teacher": teacher, "epoch": 3}, path)
    model = load_official_vit(path, TINY_VIT)
    assert torch.equal(model.pos_embed, golden["pos_embed"])
    assert torch.equal(model.blocks[0].attn.kv_proj.bias, golden["blocks.0.attn.qkv.bias"][64:])
