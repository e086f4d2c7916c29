"""MAE shapes, masking and bad input (the official numbers are in test_mae_reference.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.explain import capture
from attnlab.models import create_model
from attnlab.models.vit.mae import MAE, MAE_TINY_P4, patchify, random_masking, unpatchify


@pytest.fixture(scope="module")
def model() -> MAE:
    torch.manual_seed(0)
    return MAE(MAE_TINY_P4).eval()


def test_tiny_preset_is_registered_for_28_px_grey_images():
    created = create_model("mae-vit-tiny-p4")
    assert isinstance(created, MAE) and created.config == MAE_TINY_P4
    assert created.config.img_size == 28 and created.config.in_chans == 1


@torch.no_grad()
def test_shapes_and_the_number_of_removed_patches(model: MAE):
    out = model(torch.randn(3, 1, 28, 28))  # 49 patches, int(49 * 0.25) = 12 kept
    assert out.latent.shape == (3, 13, 64)
    assert out.pred.shape == out.target.shape == (3, 49, 16)
    assert out.mask.sum(1).tolist() == [37.0, 37.0, 37.0]
    other = model(torch.randn(2, 1, 20, 32), mask_ratio=0.5)  # 5 x 8 patches, tables evaluated anew
    assert other.latent.shape == (2, 21, 64) and other.pred.shape == (2, 40, 16)


def test_masking_keeps_the_lowest_noise_and_marks_the_rest():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.6, 0.4]])
    m = random_masking(2, 4, 0.5, noise=noise, device=noise.device)
    assert m.ids_keep.tolist() == [[1, 3], [0, 3]]
    assert m.mask.tolist() == [[1, 0, 1, 0], [0, 1, 1, 0]]
    shuffled = torch.argsort(noise, dim=1)
    assert torch.equal(torch.gather(shuffled, 1, m.ids_restore), torch.arange(4).expand(2, -1))


@torch.no_grad()
def test_kept_patches_alone_decide_the_latent(model: MAE):
    """Changing a removed patch's pixels leaves the encoder output alone; changing a kept one does not."""
    x = torch.randn(1, 1, 28, 28)
    noise = torch.rand(1, 49)
    out = model(x, noise)
    removed = int(out.mask[0].nonzero()[0])
    kept = int((1 - out.mask[0]).nonzero()[0])
    for index, same in ((removed, True), (kept, False)):
        y = x.clone()
        r, c = divmod(index, 7)
        y[..., 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 1.0
        assert torch.equal(model(y, noise).latent, out.latent) is same


def test_patchify_round_trips_any_channel_count():
    x = torch.randn(2, 5, 8, 12)
    patches = patchify(x, 4)
    assert patches.shape == (2, 6, 80)
    assert torch.equal(patches[0, 1, :5], x[0, :, 0, 4])  # first pixel of patch (0, 1): every channel
    assert torch.equal(unpatchify(patches, 4, (2, 3)), x)


def test_capture_sees_encoder_and_decoder_attention(model: MAE):
    with torch.no_grad(), capture(model) as rec:
        model(torch.randn(1, 1, 28, 28))
    assert rec["encoder.blocks.3.attn"].shape == (1, 4, 13, 13)
    assert rec["decoder_blocks.1.attn"].shape == (1, 4, 50, 50)


def test_bad_input_and_config_are_one_line(model: MAE):
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(InputError, match=r"noise must be floating \(B=2, L=49\)"):
        model(x, torch.rand(2, 48))
    with pytest.raises(InputError, match=r"mask_ratio must be in \[0, 1\), got 1.0"):
        model(x, mask_ratio=1.0)
    with pytest.raises(InputError, match="images must be floating"):
        model(torch.randn(2, 3, 28, 28))
    with pytest.raises(ConfigError, match=r"mask_ratio must be in \[0, 1\)"):
        MAE(dataclasses.replace(MAE_TINY_P4, mask_ratio=-0.1))
    with pytest.raises(ConfigError, match="decoder_dim=30 must be divisible"):
        MAE(dataclasses.replace(MAE_TINY_P4, decoder_dim=30))
