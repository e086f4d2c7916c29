"""V-JEPA against the outputs of facebookresearch/jepa at the small configuration of
``shared/reference/vjepa`` (README there): weights loaded through the one official loader,
then every golden of ``vjepa_small_golden.pt`` at the README's tolerances (atol 1e-5 on
activations, 1e-6 on losses; the official fp32-vs-fp64 spread is 2.3e-6 and 4e-8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models import create_model
from attnlab.models.vjepa.vjepa import SMALL_REFERENCE, VJEPA
from attnlab.objectives.vjepa import prediction_loss, predictor_std, variance_penalty
from attnlab.runs.official import load_official_vjepa
from tests.models.vjepa._reference import load, reference

ACT = 1e-5
LOSS = 1e-6


@pytest.fixture(scope="module")
def model() -> VJEPA:
    return load_official_vjepa(reference() / "vjepa_small_state_dict.pt", config=SMALL_REFERENCE).eval()


@pytest.fixture(scope="module")
def golden() -> dict:
    return load("vjepa_small_golden.pt")


def test_preset_is_the_reference_config():
    assert create_model("vjepa-small-reference").config == SMALL_REFERENCE


def test_every_key_loads_and_qkv_is_split_in_order(model: VJEPA):
    official = load("vjepa_small_state_dict.pt")
    qkv = official["encoder"]["backbone.blocks.1.attn.qkv.weight"]  # (192, 64): q, k, v rows
    block = model.encoder.blocks[1].attn
    assert torch.equal(block.q_proj.weight, qkv[:64])
    assert torch.equal(block.kv_proj.weight, qkv[64:])
    assert torch.equal(model.predictor.mask_tokens[1], official["predictor"]["backbone.mask_tokens.1"])
    assert torch.equal(model.encoder.pos_embed, official["encoder"]["backbone.pos_embed"])
    assert torch.equal(model.predictor.pos_embed, official["predictor"]["backbone.predictor_pos_embed"])


def test_target_encoder_features_and_their_layer_norm(model: VJEPA, golden: dict):
    clips = golden["input/clips"]
    with torch.no_grad():
        h_full = model.target_encoder(clips)
        h_ln = model.targets(clips)
    torch.testing.assert_close(h_full, golden["target/h_full"], atol=ACT, rtol=0)
    torch.testing.assert_close(h_ln, golden["target/h_layernorm"], atol=ACT, rtol=0)


def test_context_encoder_on_each_mask(model: VJEPA, golden: dict):
    clips = golden["input/clips"]
    for enc, expected in zip(golden["masks/enc"], golden["encoder/context_out"], strict=True):
        with torch.no_grad():
            torch.testing.assert_close(model.encoder(clips, enc), expected, atol=ACT, rtol=0)


def test_predictions_targets_and_losses(model: VJEPA, golden: dict):
    with torch.no_grad():
        out = model(golden["input/clips"], golden["masks/enc"], golden["masks/pred"])
    assert out.splits == (16, 24)
    for (z, h), z_ref, h_ref in zip(
        out.per_mask(), golden["predictor/out"], golden["target/h_masked"], strict=True
    ):
        torch.testing.assert_close(z, z_ref, atol=ACT, rtol=0)
        torch.testing.assert_close(h, h_ref, atol=ACT, rtol=0)
    for z, z_ref in zip(out.context, golden["encoder/context_out"], strict=True):
        torch.testing.assert_close(z, z_ref, atol=ACT, rtol=0)  # what the context regularisers read
    for index, enc in zip(out.context_index, golden["masks/enc"], strict=True):
        assert torch.equal(index, enc)  # the positions of those tokens
    torch.testing.assert_close(prediction_loss(out), golden["loss/jepa"], atol=LOSS, rtol=0)
    torch.testing.assert_close(predictor_std(out), golden["loss/pstd_z"], atol=ACT, rtol=0)
    torch.testing.assert_close(variance_penalty(out), golden["loss/reg"], atol=LOSS, rtol=0)
    assert abs(float(golden["loss/jepa"]) - 1.066085934638977) < 1e-9  # the README's value: the right file


def test_a_mistake_is_caught(model: VJEPA, golden: dict):
    """The goldens are sensitive: swapping the two mask tokens changes the predictions."""
    swapped = load_official_vjepa(reference() / "vjepa_small_state_dict.pt", config=SMALL_REFERENCE).eval()
    with torch.no_grad():
        a, b = swapped.predictor.mask_tokens
        a.data, b.data = b.data.clone(), a.data.clone()
        out = swapped(golden["input/clips"], golden["masks/enc"], golden["masks/pred"])
    z, _ = out.per_mask()[0]
    assert (z - golden["predictor/out"][0]).abs().max() > 1e-2


def test_a_checkpoint_of_another_size_is_one_line(tmp_path: Path):
    with pytest.raises(InputError, match=r"does not fit the model: .*of another shape") as err:
        load_official_vjepa(
            reference() / "vjepa_small_state_dict.pt",
            config=SMALL_REFERENCE.__class__(**{**SMALL_REFERENCE.__dict__, "dim": 128}),
        )
    assert "\n" not in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        load_official_vjepa(tmp_path / "junk.pt", config=SMALL_REFERENCE)
