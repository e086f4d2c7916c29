"""MAE against facebookresearch/mae's tiny MaskedAutoencoderViT (``shared/reference/mae``, README
there), given the golden's masking noise: weights through the one official loader, then masking,
latent, prediction, targets and both losses, the mask-ratio-0.6 run and both fixed position tables
(atol 1e-5 on activations, rtol 1e-6 on losses; the official fp32-vs-fp64 spread is 1.3e-6, 7e-8)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlab.models import create_model
from attnlab.models.vit.mae import MAE, MAE_REFERENCE, MAEOutput, normalize_patches, patchify
from attnlab.objectives.mae import mae_terms, reconstruction_loss
from attnlab.runs.official import load_official_mae
from tests._goldens import load, reference

ACT = 1e-5
LOSS = 1e-6


@pytest.fixture(scope="module")
def golden() -> dict:
    return load("mae", "mae_tiny_golden.pt")


def official(norm_pix_loss: bool) -> MAE:
    config = dataclasses.replace(MAE_REFERENCE, norm_pix_loss=norm_pix_loss)
    return load_official_mae(reference("mae") / "mae_tiny_state_dict.pt", config).eval()


def test_preset_is_the_reference_config():
    assert create_model("mae-small-reference").config == MAE_REFERENCE


def test_every_key_loads_and_the_encoder_holds_the_encoder_weights():
    model = official(False)
    state = load("mae", "mae_tiny_state_dict.pt")
    qkv = state["decoder_blocks.1.attn.qkv.weight"]  # (96, 32): q, k, v rows
    assert torch.equal(model.decoder_blocks[1].attn.q_proj.weight, qkv[:32])
    assert torch.equal(model.decoder_blocks[1].attn.kv_proj.weight, qkv[32:])
    assert torch.equal(model.encoder.patch_embed.proj.weight, state["patch_embed.proj.weight"])
    assert torch.equal(model.encoder.cls_token, state["cls_token"])
    assert torch.equal(model.mask_token, state["mask_token"])


def test_position_tables_are_built_with_the_column_first_quirk(golden: dict):
    fresh = MAE(MAE_REFERENCE)  # not loaded: the tables are computed, not read
    torch.testing.assert_close(fresh.encoder.pos_embed, golden["pos_embed"], atol=1e-6, rtol=0)
    torch.testing.assert_close(fresh.decoder_pos_embed, golden["decoder_pos_embed"], atol=1e-6, rtol=0)
    # the row-first order (V-JEPA's and layers.pos_embed's) would not match
    swapped = torch.cat([fresh.encoder.pos_embed[..., 32:], fresh.encoder.pos_embed[..., :32]], dim=-1)
    assert (swapped - golden["pos_embed"]).abs().max() > 0.1


@pytest.mark.parametrize("norm_pix_loss", [False, True])
@torch.no_grad()
def test_masking_latent_prediction_targets_and_loss(golden: dict, norm_pix_loss: bool):
    out = official(norm_pix_loss)(golden["input/imgs"], noise=golden["masking/noise"])
    assert torch.equal(out.ids_restore, golden["masking/ids_restore"])
    assert torch.equal(out.mask, golden["masking/mask"])
    torch.testing.assert_close(out.latent, golden["encoder/latent"], atol=ACT, rtol=0)
    torch.testing.assert_close(out.pred, golden["decoder/pred"], atol=ACT, rtol=0)
    target = golden["target/normalized" if norm_pix_loss else "target/patchify"]
    torch.testing.assert_close(out.target, target, atol=ACT, rtol=0)
    expected = golden[f"loss/norm_pix_loss_{norm_pix_loss}"]
    torch.testing.assert_close(reconstruction_loss(out), expected, atol=0, rtol=LOSS)
    torch.testing.assert_close(mae_terms(out, weight=2.0)["mae"], 2 * expected, atol=0, rtol=LOSS)


@torch.no_grad()
def test_seeded_noise_and_mask_ratio_point_six(golden: dict):
    model = official(False)
    torch.manual_seed(golden["masking/mask_seed"])  # the noise is the first draw after seeding
    out = model(golden["input/imgs"])
    torch.testing.assert_close(out.pred, golden["decoder/pred"], atol=ACT, rtol=0)
    torch.manual_seed(golden["masking/mask_seed"])
    out = model(golden["input/imgs"], mask_ratio=0.6)
    assert out.latent.shape[1] == 1 + golden["mask_ratio_0.6/len_keep"]
    assert torch.equal(out.mask, golden["mask_ratio_0.6/mask"])
    torch.testing.assert_close(out.pred, golden["mask_ratio_0.6/pred"], atol=ACT, rtol=0)
    torch.testing.assert_close(reconstruction_loss(out), golden["mask_ratio_0.6/loss"], atol=0, rtol=LOSS)


def test_patch_order_and_unbiased_normalisation_are_the_goldens(golden: dict):
    imgs = golden["input/imgs"]
    patches = patchify(imgs, 4)
    torch.testing.assert_close(patches, golden["target/patchify"], atol=0, rtol=0)
    # (c, p, q) order or a biased variance would miss the golden
    cpq = imgs.reshape(2, 3, 8, 4, 8, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 64, 48)
    assert (cpq - golden["target/patchify"]).abs().max() > 0.1
    torch.testing.assert_close(normalize_patches(patches), golden["target/normalized"], atol=ACT, rtol=0)
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True, unbiased=False)
    biased = (patches - mean) / (var + 1e-6) ** 0.5
    assert (biased - golden["target/normalized"]).abs().max() > 100 * ACT


def test_loss_counts_only_removed_patches():
    pred = torch.zeros(1, 4, 3)
    target = torch.tensor([[[1.0, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]]])
    mask = torch.tensor([[0.0, 1, 0, 1]])  # patches 1 and 3 removed: (4 + 16) / 2
    out = MAEOutput(latent=pred, pred=pred, target=target, mask=mask, ids_restore=torch.zeros(1, 4))
    assert reconstruction_loss(out).item() == pytest.approx(10.0)
