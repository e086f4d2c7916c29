"""LuongAttention against a float64 loop over the paper's equations (Luong et al. 2015, Eqs. 7-10)."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.luong import LuongAttention


def score64(m: LuongAttention, h: torch.Tensor, hs: torch.Tensor) -> float:
    """score(h_t, h̄_s) for one query vector and one source vector."""
    if m.score == "dot":
        return float(h @ hs)
    if m.score == "general":
        return float(h @ (m.w_a.weight @ hs))
    return float(m.v_a.weight[0] @ torch.tanh(m.w_a.weight @ torch.cat([h, hs])))


@torch.no_grad()
def luong64(m: LuongAttention, query, keys, values, padding=None, step=0):
    """Context (B, Lq, Dv) and weights (B, Lq, Lk), one query and source position at a time."""
    B, Lq, _ = query.shape
    Lk = keys.shape[1]
    weights = torch.zeros(B, Lq, Lk, dtype=torch.float64)
    for b in range(B):
        valid = [s for s in range(Lk) if padding is None or not padding[b, s]]
        S = len(valid)
        for t in range(Lq):
            h = query[b, t]
            if m.window == "global":
                window = valid
            else:
                if m.window == "local-m":
                    p = float(step + t)
                else:  # p_t = S sigmoid(v_p^T tanh(W_p h_t))
                    p = S / (1 + math.exp(-float(m.v_p.weight[0] @ torch.tanh(m.w_p.weight @ h))))
                window = [s for s in valid if abs(s - p) <= m.half_width]
            scores = {s: score64(m, h, keys[b, s]) for s in window}
            top = max(scores.values(), default=0.0)
            total = sum(math.exp(v - top) for v in scores.values())
            for s, v in scores.items():
                a = math.exp(v - top) / total
                if m.window == "local-p":
                    sigma = m.half_width / 2
                    a *= math.exp(-((s - p) ** 2) / (2 * sigma**2))
                weights[b, t, s] = a
    return weights @ values, weights


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
@pytest.mark.parametrize("window", ["global", "local-m", "local-p"])
@pytest.mark.parametrize("padded", [False, True])
def test_matches_float64_loop(score: str, window: str, padded: bool) -> None:
    torch.manual_seed(0)
    m = LuongAttention(6, score=score, window=window, half_width=2, attn_dim=5).double()  # type: ignore[arg-type]
    query = torch.randn(2, 4, 6, dtype=torch.float64)
    keys = torch.randn(2, 9, 6, dtype=torch.float64)
    values = torch.randn(2, 9, 3, dtype=torch.float64)
    padding = torch.zeros(2, 9, dtype=torch.bool)
    if padded:
        padding[1, 6:] = True  # the second sequence has 6 source positions
    mask = padding if padded else None
    expected, expected_w = luong64(m, query, keys, values, mask, step=3)
    with capture(m) as rec:
        out = m(query, keys, values, key_padding_mask=mask, step=3)
    torch.testing.assert_close(rec[""], expected_w)
    torch.testing.assert_close(out, expected)


def test_local_m_window_by_hand() -> None:
    m = LuongAttention(2, score="dot", window="local-m", half_width=1).double()
    keys = torch.zeros(1, 5, 2, dtype=torch.float64)  # equal scores: uniform over the window
    with capture(m) as rec:
        m(torch.zeros(1, 2, dtype=torch.float64), keys, step=0)  # step 0: window {0, 1}
        m(torch.zeros(1, 2, dtype=torch.float64), keys, step=3)  # step 3: window {2, 3, 4}
    first, second = rec.calls("")
    torch.testing.assert_close(first[0, 0], torch.tensor([0.5, 0.5, 0, 0, 0], dtype=torch.float64))
    third = 1 / 3
    torch.testing.assert_close(second[0, 0], torch.tensor([0, 0, third, third, third], dtype=torch.float64))


def test_local_p_gaussian_by_hand() -> None:
    # v_p = 0: p_t = S * sigmoid(0) = S / 2 = 2 for S = 4; D = 2, sigma = 1; equal scores
    m = LuongAttention(2, score="dot", window="local-p", half_width=2, attn_dim=2).double()
    with torch.no_grad():
        m.v_p.weight.zero_()
    with capture(m) as rec:
        m(torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 4, 2, dtype=torch.float64))
    assert m.positions is not None and m.positions.item() == 2.0
    g = [math.exp(-((s - 2) ** 2) / 2) / 4 for s in range(4)]  # window {0..3} all within 2 of p_t
    torch.testing.assert_close(rec[""][0, 0], torch.tensor(g, dtype=torch.float64))


def test_every_parameter_gets_a_gradient_and_gradcheck() -> None:
    torch.manual_seed(1)
    for score in ("general", "concat"):
        m = LuongAttention(4, score=score, window="local-p", half_width=3).double()  # type: ignore[arg-type]
        q = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
        k = torch.randn(2, 7, 4, dtype=torch.float64, requires_grad=True)
        m(q, k).square().sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
        assert torch.autograd.gradcheck(lambda q, k, m=m: m(q, k), (q, k))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": "dot", "key_dim": 3}, "dot score needs key_dim == dim"),
        ({"score": "cosine"}, "score must be one of"),
        ({"window": "local-p", "half_width": 0}, "half_width"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        LuongAttention(4, **kwargs)


def test_bad_inputs() -> None:
    m = LuongAttention(4)
    with pytest.raises(InputError, match="keys must be"):
        m(torch.randn(2, 4), torch.randn(2, 5, 3))
    with pytest.raises(InputError, match="key_padding_mask"):
        m(torch.randn(2, 4), torch.randn(2, 5, 4), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
