"""MultiHeadAttention against torch.nn.MultiheadAttention and a float64 eager computation."""

import math

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.masks import video_block_mask

D, H = 32, 4


def paired(kv_dim: int | None = None) -> tuple[MultiHeadAttention, nn.MultiheadAttention]:
    ours = MultiHeadAttention(D, num_heads=H, kv_dim=kv_dim)
    ref = nn.MultiheadAttention(D, H, batch_first=True, kdim=kv_dim, vdim=kv_dim)
    with torch.no_grad():
        if kv_dim is None:
            ours.q_proj.weight.copy_(ref.in_proj_weight[:D])
            ours.kv_proj.weight.copy_(ref.in_proj_weight[D:])
        else:
            ours.q_proj.weight.copy_(ref.q_proj_weight)
            ours.kv_proj.weight.copy_(torch.cat([ref.k_proj_weight, ref.v_proj_weight]))
        ours.q_proj.bias.copy_(ref.in_proj_bias[:D])
        ours.kv_proj.bias.copy_(ref.in_proj_bias[D:])
        ours.proj.load_state_dict(ref.out_proj.state_dict())
    return ours, ref


def eager64(m: MultiHeadAttention, x: torch.Tensor, ctx: torch.Tensor, allowed: torch.Tensor | None):
    """The paper's equations in float64 with explicit per-head loops."""
    x, ctx = x.double(), ctx.double()
    p = {k: v.double() for k, v in m.state_dict().items()}
    q = x @ p["q_proj.weight"].T + p["q_proj.bias"]
    kv = ctx @ p["kv_proj.weight"].T + p["kv_proj.bias"]
    k, v = kv[..., :D], kv[..., D:]
    dh = D // H
    heads, weights = [], []
    for h in range(H):
        sl = slice(h * dh, (h + 1) * dh)
        logits = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(dh)
        if allowed is not None:
            logits = logits.masked_fill(~allowed, -math.inf)
        w = torch.softmax(logits, -1)
        weights.append(w)
        heads.append(w @ v[..., sl])
    out = torch.cat(heads, -1) @ p["proj.weight"].T + p["proj.bias"]
    return out, torch.stack(weights, 1)


def test_self_attention_equals_torch_and_float64():
    ours, ref = paired()
    x = torch.randn(3, 7, D)
    expected, expected_w = ref(x, x, x, average_attn_weights=False)
    with capture(ours) as rec:
        out = ours(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rec[""], expected_w, atol=1e-5, rtol=1e-5)
    out64, w64 = eager64(ours, x, x, None)
    torch.testing.assert_close(out.double(), out64, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rec[""].double(), w64, atol=1e-6, rtol=1e-5)


def test_cross_attention_with_other_kv_dim_equals_torch():
    ours, ref = paired(kv_dim=20)
    x, ctx = torch.randn(2, 5, D), torch.randn(2, 9, 20)
    expected, _ = ref(x, ctx, ctx)
    torch.testing.assert_close(ours(x, ctx), expected, atol=1e-5, rtol=1e-5)


def test_boolean_and_padding_masks_equal_torch():
    ours, ref = paired()
    x, ctx = torch.randn(2, 5, D), torch.randn(2, 6, D)
    allowed = torch.rand(5, 6) > 0.3
    allowed[:, 0] = True  # no fully masked row
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    # torch's boolean masks mean "blocked", ours "may attend" (SDPA convention)
    expected, _ = ref(x, ctx, ctx, attn_mask=~allowed, key_padding_mask=padding)
    out = ours(x, ctx, attn_mask=allowed, key_padding_mask=padding)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    both = allowed[None] & ~padding[:, None, :]
    out64, _ = eager64(ours, x, ctx, both)
    torch.testing.assert_close(out.double(), out64, atol=1e-5, rtol=1e-5)


def test_additive_float_mask_equals_torch():
    ours, ref = paired()
    x = torch.randn(2, 5, D)
    bias = torch.randn(2 * H, 5, 5)  # torch wants (B*H, L, L); ours (B, H, L, L)
    expected, _ = ref(x, x, x, attn_mask=bias)
    torch.testing.assert_close(ours(x, attn_mask=bias.view(2, H, 5, 5)), expected, atol=1e-5, rtol=1e-5)


def test_causal_equals_torch_and_mixed_masks():
    ours, ref = paired()
    x = torch.randn(2, 6, D)
    blocked = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)
    expected, _ = ref(x, x, x, attn_mask=blocked)
    torch.testing.assert_close(ours(x, is_causal=True), expected, atol=1e-5, rtol=1e-5)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[0, 5] = True
    expected, _ = ref(x, x, x, attn_mask=blocked, key_padding_mask=padding)
    torch.testing.assert_close(
        ours(x, is_causal=True, key_padding_mask=padding), expected, atol=1e-5, rtol=1e-5
    )


def test_masked_key_gets_zero_weight_and_does_not_matter():
    ours, _ = paired()
    ours.eval()
    x = torch.randn(2, 6, D)
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[:, 2] = True
    with capture(ours) as rec:
        out = ours(x, key_padding_mask=padding)
    assert torch.all(rec[""][..., 2] == 0)
    changed = x.clone()
    changed[:, 2] += 100.0
    changed_out = ours(changed, key_padding_mask=padding)
    keep = torch.tensor([0, 1, 3, 4, 5])  # the changed token's own row differs, its query changed
    torch.testing.assert_close(out[:, keep], changed_out[:, keep])


def test_causal_no_information_flows_back_in_time():
    ours, _ = paired()
    x = torch.randn(1, 8, D, requires_grad=True)
    out = ours(x, is_causal=True)
    (grad,) = torch.autograd.grad(out[0, 3].sum(), x)
    assert torch.all(grad[0, 4:] == 0)
    assert torch.all(grad[0, :4].abs().sum(-1) > 0)


def test_video_block_mask_gradients_follow_the_blocks():
    """Slot x frame attention: (t, k) sees frames <= t of every slot; per-slot sees only slot k."""
    T, K = 4, 3
    m = MultiHeadAttention(D, num_heads=H)
    for same_slot in (False, True):
        x = torch.randn(1, T * K, D, requires_grad=True)
        mask = video_block_mask(T, K, causal=True, same_slot=same_slot)
        t, k = 2, 1
        (grad,) = torch.autograd.grad(m(x, attn_mask=mask)[0, t * K + k].sum(), x)
        reached = grad[0].abs().sum(-1).view(T, K) > 0  # (T, K)
        expected = torch.zeros(T, K, dtype=torch.bool)
        if same_slot:
            expected[: t + 1, k] = True
        else:
            expected[: t + 1] = True
        assert torch.equal(reached, expected)


def test_gradcheck_float64():
    m = MultiHeadAttention(8, num_heads=2).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    ctx = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    allowed = torch.ones(4, 5, dtype=torch.bool).tril()
    assert torch.autograd.gradcheck(lambda a, b: m(a, b, attn_mask=allowed), (x, ctx))


def test_every_parameter_gets_a_gradient():
    m = MultiHeadAttention(D, num_heads=H)
    m(torch.randn(2, 5, D), torch.randn(2, 3, D)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("differentiable", [False, True])
def test_capture_keeps_outputs_and_gives_weights(differentiable: bool):
    m = MultiHeadAttention(D, num_heads=H).eval()
    x = torch.randn(2, 5, D)
    plain = m(x, is_causal=True)
    with capture(m, differentiable=differentiable) as rec:
        captured = m(x, is_causal=True)
    if differentiable:
        torch.testing.assert_close(captured, plain, atol=1e-6, rtol=1e-5)
    else:
        assert torch.equal(captured, plain)  # recording never changes the fused output
    w = rec[""]
    assert w.shape == (2, H, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 5))
    assert torch.all(w.triu(1) == 0)
    assert w.requires_grad == differentiable


def test_bad_inputs_are_one_line_errors():
    m = MultiHeadAttention(D, num_heads=H)
    with pytest.raises(InputError, match="x must be"):
        m(torch.randn(5, D))
    with pytest.raises(InputError, match="x must be"):
        m(torch.randn(2, 5, D + 1))
    with pytest.raises(InputError, match="context"):
        m(torch.randn(2, 5, D), torch.randn(3, 5, D))
    with pytest.raises(InputError, match="attn_mask"):
        m(torch.randn(2, 5, D), attn_mask=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(InputError, match="key_padding_mask"):
        m(torch.randn(2, 5, D), key_padding_mask=torch.ones(2, 5))
    with pytest.raises(InputError, match="divisible"):
        MultiHeadAttention(30, num_heads=4)
