"""The pixel-prediction ablation: targets are each tubelet's pixels, in the encoder's token order."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.models import create_model
from attnlab.models.vjepa.vjepa import patchify


def test_patchify_is_the_tubelet_embeddings_input():
    """The Conv3d tubelet embedding equals a linear map of patchify's rows: same order, same pixels."""
    model = create_model("vjepa-small-reference")
    clips = torch.randn(2, 3, 4, 32, 32, dtype=torch.float64)
    conv = model.encoder.patch_embed.proj.double()
    tokens = conv(clips).flatten(2).transpose(1, 2)  # (B, N, D)
    linear = patchify(clips, model.config) @ conv.weight.reshape(64, -1).T + conv.bias
    torch.testing.assert_close(tokens, linear)
    t, h, w = 1, 2, 3  # token (1, 2, 3) of the 2 x 4 x 4 grid holds frames 2-3, rows 16-23, columns 24-31
    expected = clips[0, :, 2:4, 16:24, 24:32].reshape(-1)
    assert torch.equal(patchify(clips, model.config)[0, t * 16 + h * 4 + w], expected)


def test_pixel_model_predicts_normalised_pixels():
    model = create_model("vjepa-small-reference", target="pixels").eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    enc, pred = [torch.arange(10).expand(2, -1)], [torch.arange(10, 32).expand(2, -1)]
    out = model(clips, enc, pred)
    assert out.pred.shape == out.target.shape == (2, 22, 3 * 2 * 8 * 8)
    rows = patchify(clips, model.config)[:, 10:]
    torch.testing.assert_close(out.target, F.layer_norm(rows, (384,)))
    out.pred.abs().mean().backward()
    assert model.predictor.proj.weight.grad is not None
