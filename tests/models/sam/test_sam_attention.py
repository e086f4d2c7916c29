"""SAM's attention is capturable: the recorded weights are the ones the forward used, and the
encoder's relative-position attention equals a float64 eager computation written out here."""

import torch

from attnlab.explain.capture import capture
from attnlab.models.sam.image_encoder import EncoderAttention
from attnlab.models.sam.sam import SMALL_REFERENCE, Sam
from tests import _goldens


def test_decoder_token_to_image_attention_is_recorded_without_changing_the_output():
    model = Sam(SMALL_REFERENCE)
    model.load_state_dict(_goldens.load("sam", "sam_small_state_dict.pt"))
    model.eval()
    emb = torch.randn(1, 64, 8, 8)
    boxes = torch.tensor([[10.0, 20, 60, 90], [50, 5, 120, 70]])
    with torch.no_grad():
        plain = model.decode(emb, boxes=boxes).masks
        with capture(model) as rec:
            captured = model.decode(emb, boxes=boxes).masks
    torch.testing.assert_close(captured, plain, rtol=0, atol=0)
    weights = rec["mask_decoder.transformer.final_attn_token_to_image"]
    assert weights.shape == (2, 4, 1 + 4 + 2, 64)  # (boxes, heads, [iou, 4 masks, 2 corners], h*w)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))
    assert "image_encoder.blocks.1.attn" not in rec  # the encoder did not run in decode
    with capture(model, differentiable=True) as rec:
        eager = model.decode(emb, boxes=boxes).masks
    torch.testing.assert_close(eager, plain, rtol=1e-5, atol=1e-5)
    assert rec["mask_decoder.transformer.layers.0.cross_attn_token_to_image"].requires_grad


def reference_attention(attn: EncoderAttention, x: torch.Tensor) -> torch.Tensor:
    """Float64, one query-key pair at a time: logit = q.k/sqrt(d) + q.Rh[i-k+H-1] + q.Rw[j-l+W-1]."""
    B, H, W, C = x.shape
    nh, hd = attn.num_heads, attn.head_dim
    qkv = torch.nn.functional.linear(x, attn.qkv.weight.double(), attn.qkv.bias.double())
    q, k, v = qkv.reshape(B, H * W, 3, nh, hd).unbind(2)  # (B, L, nh, hd) each
    Rh, Rw = attn.rel_pos_h.double(), attn.rel_pos_w.double()
    logits = torch.empty(B, nh, H * W, H * W, dtype=torch.float64)
    for a in range(H * W):
        i, j = divmod(a, W)
        for b in range(H * W):
            kk, ll = divmod(b, W)
            bias = (q[:, a] * Rh[i - kk + H - 1]).sum(-1) + (q[:, a] * Rw[j - ll + W - 1]).sum(-1)  # (B, nh)
            logits[:, :, a, b] = (q[:, a] * k[:, b]).sum(-1) / hd**0.5 + bias
    out = torch.einsum("bnqk,bknd->bqnd", logits.softmax(-1), v).reshape(B, H, W, C)
    return torch.nn.functional.linear(out, attn.proj.weight.double(), attn.proj.bias.double())


def test_relative_position_attention_equals_float64_eager():
    attn = EncoderAttention(16, num_heads=2, qkv_bias=True, use_rel_pos=True, input_size=(3, 4))
    torch.nn.init.normal_(attn.rel_pos_h)
    torch.nn.init.normal_(attn.rel_pos_w)
    x = torch.randn(2, 3, 4, 16)
    expected = reference_attention(attn, x.double())
    torch.testing.assert_close(attn(x).double(), expected, rtol=1e-5, atol=1e-5)


def test_one_image_shared_by_every_box_decodes_as_the_image_repeated_per_box():
    """Without mask prompts the decoder takes one image's embedding once (its first block's image
    projections computed once); the masks, IoU predictions and recorded weights equal those of the
    embedding repeated per box (the general path), with and without a differentiable capture."""
    torch.manual_seed(0)
    model = Sam(SMALL_REFERENCE)
    model.load_state_dict(_goldens.load("sam", "sam_small_state_dict.pt"))
    model.eval()
    emb = torch.randn(1, 64, 8, 8)
    boxes = torch.tensor([[10.0, 20, 60, 90], [50, 5, 120, 70], [0, 0, 128, 128]])
    sparse, dense = model.encode_prompts(boxes=boxes)
    assert dense.stride(0) == 0  # no mask prompt: one broadcast vector
    pe, decoder = model.prompt_encoder.get_dense_pe(), model.mask_decoder
    for differentiable in (False, True):
        with capture(model, differentiable=differentiable) as shared_rec:
            shared = decoder.predict_masks(emb, pe, sparse, dense)
        with capture(model, differentiable=differentiable) as repeated_rec:
            repeated = decoder.predict_masks(
                emb.expand(3, -1, -1, -1).contiguous(), pe, sparse, dense.contiguous()
            )
        for a, b in zip(shared, repeated, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert shared_rec.keys() == repeated_rec.keys()
        for name in shared_rec:
            torch.testing.assert_close(shared_rec[name], repeated_rec[name], rtol=1e-5, atol=1e-6, msg=name)
