"""AttentivePooler / AttentiveClassifier against a float64 eager computation and set properties."""

import math
from typing import Literal

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.pooling import AttentiveClassifier, AttentivePooler, CrossAttentionBlock

D, H = 16, 4
P = dict[str, torch.Tensor]
Where = Literal["tokens", "queries"]


def ln64(x: torch.Tensor, p: P, name: str) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * p[f"{name}weight"] + p[f"{name}bias"]


def mha64(q_in: torch.Tensor, kv_in: torch.Tensor, p: P, name: str, allowed: torch.Tensor | None = None):
    """Per-head softmax(QK^T/sqrt(d)) V with explicit loops; allowed (B, Lk) True = may attend."""
    dim = p[f"{name}q_proj.weight"].shape[0]
    q = q_in @ p[f"{name}q_proj.weight"].T + p[f"{name}q_proj.bias"]
    kv = kv_in @ p[f"{name}kv_proj.weight"].T + p[f"{name}kv_proj.bias"]
    k, v = kv[..., :dim], kv[..., dim:]
    dh = dim // H
    heads, weights = [], []
    for h in range(H):
        sl = slice(h * dh, (h + 1) * dh)
        logits = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(dh)
        if allowed is not None:
            logits = logits.masked_fill(~allowed[:, None, :], -math.inf)
        w = torch.exp(logits - logits.amax(-1, keepdim=True))
        w = w / w.sum(-1, keepdim=True)
        weights.append(w)
        heads.append(w @ v[..., sl])
    out = torch.cat(heads, -1) @ p[f"{name}proj.weight"].T + p[f"{name}proj.bias"]
    return out, torch.stack(weights, 1)


def mlp64(x: torch.Tensor, p: P, name: str) -> torch.Tensor:
    h = x @ p[f"{name}fc1.weight"].T + p[f"{name}fc1.bias"]
    h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))  # exact GELU
    return h @ p[f"{name}fc2.weight"].T + p[f"{name}fc2.bias"]


def cross_block64(q, x, p: P, name: str, allowed=None):
    y, w = mha64(q, ln64(x, p, f"{name}norm1."), p, f"{name}attn.", allowed)
    q = q + y
    return q + mlp64(ln64(q, p, f"{name}norm2."), p, f"{name}mlp."), w


def self_block64(x, p: P, name: str, allowed=None):
    y, _ = mha64(ln64(x, p, f"{name}norm1."), ln64(x, p, f"{name}norm1."), p, f"{name}attn.", allowed)
    x = x + y
    return x + mlp64(ln64(x, p, f"{name}norm2."), p, f"{name}mlp.")


def pooler64(m: AttentivePooler, x: torch.Tensor, allowed: torch.Tensor | None = None, prefix: str = ""):
    """The V-JEPA probe written out: self-attention blocks on tokens (or on queries), cross-attention."""
    p = {k: v.double() for k, v in m.state_dict().items()}
    x = x.double()
    depth = len(m.blocks) + 1
    if m.self_attn_on == "tokens":
        for i in range(depth - 1):
            x = self_block64(x, p, f"{prefix}blocks.{i}.", allowed)
    q = p[f"{prefix}query_tokens"].expand(x.shape[0], -1, -1)
    q, w = cross_block64(q, x, p, f"{prefix}cross_block.", allowed)
    if m.self_attn_on == "queries":
        for i in range(depth - 1):
            q = self_block64(q, p, f"{prefix}blocks.{i}.")
    return q, w


@pytest.mark.parametrize(("depth", "where"), [(1, "tokens"), (3, "tokens"), (2, "queries")])
def test_pooler_equals_float64_reference(depth: int, where: Where):
    m = AttentivePooler(D, num_queries=2, num_heads=H, depth=depth, self_attn_on=where).eval()
    x = torch.randn(3, 7, D)
    with capture(m) as rec:
        out = m(x)
    expected, w = pooler64(m, x)
    assert out.shape == (3, 2, D)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(rec["cross_block.attn"].double(), w, atol=1e-6, rtol=1e-5)
    assert rec["cross_block.attn"].shape == (3, H, 2, 7)
    torch.testing.assert_close(rec["cross_block.attn"].sum(-1), torch.ones(3, H, 2))
    n = 7 if where == "tokens" else 2
    for i in range(depth - 1):
        assert rec[f"blocks.{i}.attn"].shape == (3, H, n, n)


def test_orders_differ_so_the_option_matters():
    a = AttentivePooler(D, num_queries=2, num_heads=H, depth=2, self_attn_on="tokens")
    b = AttentivePooler(D, num_queries=2, num_heads=H, depth=2, self_attn_on="queries")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, D)
    assert not torch.allclose(a(x), b(x), atol=1e-4)


@pytest.mark.parametrize("depth", [1, 2])
def test_pooler_is_invariant_to_token_permutation(depth: int):
    m = AttentivePooler(D, num_queries=3, num_heads=H, depth=depth)
    x = torch.randn(2, 9, D)
    perm = torch.randperm(9)
    torch.testing.assert_close(m(x[:, perm]), m(x), atol=1e-5, rtol=1e-5)


def test_padded_key_gets_zero_weight_and_its_value_does_not_matter():
    m = AttentivePooler(D, num_queries=2, num_heads=H, depth=2).eval()
    x = torch.randn(2, 6, D)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 4:] = True
    pad[1, 1] = True
    with capture(m) as rec:
        out = m(x, key_padding_mask=pad)
    cross, self_w = rec["cross_block.attn"], rec["blocks.0.attn"]
    assert torch.all(cross[0, ..., 4:] == 0) and torch.all(cross[1, ..., 1] == 0)
    assert torch.all(self_w[0, ..., 4:] == 0) and torch.all(self_w[1, ..., 1] == 0)
    changed = x.clone()
    changed[pad] = 1000.0 * torch.randn(int(pad.sum()), D)
    torch.testing.assert_close(m(changed, key_padding_mask=pad), out)
    # padding the tail is the same as leaving those tokens out
    torch.testing.assert_close(out[:1], m(x[:1, :4]), atol=1e-5, rtol=1e-5)
    expected, _ = pooler64(m, x, ~pad)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)


def test_classifier_is_linear_head_on_pooled_token():
    m = AttentiveClassifier(D, num_classes=5, num_heads=H, depth=2).eval()
    x = torch.randn(3, 8, D)
    with capture(m) as rec:
        logits = m(x)
    assert logits.shape == (3, 5)
    pooled, _ = pooler64(m.pooler, x)
    expected = pooled[:, 0] @ m.linear.weight.double().T + m.linear.bias.double()
    torch.testing.assert_close(logits.double(), expected, atol=1e-5, rtol=1e-4)
    w = rec["pooler.cross_block.attn"]
    assert w.shape == (3, H, 1, 8)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, H, 1))


def test_initialisation_follows_official_rescaling():
    dim = 128
    m = AttentivePooler(dim, num_heads=4, depth=3, init_std=0.02)
    order = [m.blocks[0], m.blocks[1], m.cross_block]  # processing order with self_attn_on="tokens"
    for layer, block in enumerate(order, 1):
        expected = 0.02 / math.sqrt(2 * layer)
        for w in (block.attn.proj.weight, block.mlp.fc2.weight):
            assert abs(w.std().item() / expected - 1) < 0.1
    assert abs(m.cross_block.attn.q_proj.weight.std().item() / 0.02 - 1) < 0.1
    for mod in m.modules():
        if isinstance(mod, nn.Linear) and mod.bias is not None:
            assert torch.all(mod.bias == 0)


def test_gradcheck_float64():
    m = AttentivePooler(8, num_queries=2, num_heads=2, depth=2, mlp_ratio=1.0).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[False, False, False, True], [False] * 4])
    assert torch.autograd.gradcheck(lambda t: m(t, key_padding_mask=pad), (x,))


@pytest.mark.parametrize("where", ["tokens", "queries"])
def test_every_parameter_gets_a_gradient(where: Where):
    # 3 queries: self-attention over a single query would leave q/k without gradient
    m = AttentivePooler(D, num_queries=3, num_heads=H, depth=2, self_attn_on=where)
    m(torch.randn(2, 5, D)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    c = AttentiveClassifier(D, num_classes=3, num_heads=H)
    c(torch.randn(2, 5, D)).sum().backward()
    for name, p in c.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_cross_attention_block_with_other_kv_dim():
    block = CrossAttentionBlock(D, num_heads=H, kv_dim=10).eval()
    q, x = torch.randn(2, 3, D), torch.randn(2, 5, 10)
    expected, _ = cross_block64(
        q.double(), x.double(), {k: v.double() for k, v in block.state_dict().items()}, ""
    )
    torch.testing.assert_close(block(q, x).double(), expected, atol=1e-5, rtol=1e-4)


def test_bad_inputs_raise_input_error():
    m = AttentivePooler(D, num_heads=H)
    with pytest.raises(InputError, match="tokens must be"):
        m(torch.randn(5, D))
    with pytest.raises(InputError, match="tokens must be"):
        m(torch.randn(2, 5, D + 1))
    with pytest.raises(InputError, match="tokens must be"):
        m(torch.randn(2, 0, D))
    with pytest.raises(InputError, match="key_padding_mask must be"):
        m(torch.randn(2, 5, D), key_padding_mask=torch.zeros(2, 5))
    with pytest.raises(InputError, match="key_padding_mask must be"):
        m(torch.randn(2, 5, D), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    all_pad = torch.zeros(2, 5, dtype=torch.bool)
    all_pad[1] = True
    with pytest.raises(InputError, match="every token"):
        m(torch.randn(2, 5, D), key_padding_mask=all_pad)
    with pytest.raises(InputError, match="depth"):
        AttentivePooler(D, num_heads=H, depth=0)
    with pytest.raises(InputError, match="self_attn_on"):
        AttentivePooler(D, num_heads=H, self_attn_on="both")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="divisible"):
        AttentivePooler(D, num_heads=3)
    with pytest.raises(InputError, match="num_classes"):
        AttentiveClassifier(D, num_classes=0, num_heads=H)
