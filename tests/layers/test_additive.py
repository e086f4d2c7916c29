"""AdditiveAttention and SpatialSoftAttention against float64 loops over the papers' equations."""

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.additive import AdditiveAttention, SpatialSoftAttention, doubly_stochastic_penalty


def params64(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().double() for k, v in m.state_dict().items()}


def softmax64(e: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """exp(e_j) / sum_k exp(e_k) over the kept entries, 0 elsewhere."""
    ex = torch.where(keep, torch.exp(e - e[keep].max()), torch.zeros_like(e))
    return ex / ex.sum()


def bahdanau64(m: AdditiveAttention, query, keys, values, padding=None):
    """Eq. (5)-(6) of Bahdanau et al., one query and one key at a time, in float64."""
    p = params64(m)
    Wq, Wk, b, v = p["q_proj.weight"], p["k_proj.weight"], p["k_proj.bias"], p["score.weight"][0]
    B, Lq, Lk = query.shape[0], query.shape[1], keys.shape[1]
    weights = torch.zeros(B, Lq, Lk, dtype=torch.float64)
    context = torch.zeros(B, Lq, values.shape[-1], dtype=torch.float64)
    for bi in range(B):
        keep = torch.ones(Lk, dtype=torch.bool) if padding is None else ~padding[bi]
        for i in range(Lq):
            q = query[bi, i].double()
            e = torch.stack([v @ torch.tanh(Wq @ q + Wk @ keys[bi, j].double() + b) for j in range(Lk)])
            a = softmax64(e, keep)
            weights[bi, i] = a
            context[bi, i] = sum(a[j] * values[bi, j].double() for j in range(Lk))
    return context, weights


def soft_attention64(m: SpatialSoftAttention, features, hidden):
    """Eq. (4)-(5), (13) of Show, Attend and Tell, one location at a time, in float64."""
    p = params64(m)
    B, C, H, W = features.shape
    alphas = torch.zeros(B, H, W, dtype=torch.float64)
    contexts = torch.zeros(B, C, dtype=torch.float64)
    for b in range(B):
        h = hidden[b].double()
        locations = [features[b, :, y, x].double() for y in range(H) for x in range(W)]
        e = torch.stack(
            [
                p["score.weight"][0]
                @ torch.tanh(p["feat_proj.weight"] @ a + p["feat_proj.bias"] + p["hidden_proj.weight"] @ h)
                for a in locations
            ]
        )
        alpha = softmax64(e, torch.ones_like(e, dtype=torch.bool))
        beta = 1.0
        if m.gate is not None:
            beta = 1.0 / (1.0 + torch.exp(-(p["gate.weight"][0] @ h + p["gate.bias"][0])))
        alphas[b] = alpha.view(H, W)
        contexts[b] = beta * sum(alpha[i] * locations[i] for i in range(H * W))
    return contexts, alphas


def assert_every_parameter_gets_gradient(m: nn.Module, out: torch.Tensor) -> None:
    (out * torch.randn_like(out)).sum().backward()
    for name, param in m.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


# ------------------------------------------------------------------ AdditiveAttention


def test_additive_matches_float64_loop_and_records_softmax_weights():
    m = AdditiveAttention(6, key_dim=5, attn_dim=7)
    query, keys, values = torch.randn(2, 3, 6), torch.randn(2, 4, 5), torch.randn(2, 4, 3)
    with capture(m) as rec:
        out = m(query, keys, values)
    expected, expected_w = bahdanau64(m, query, keys, values)
    assert out.shape == (2, 3, 3)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert rec[""].shape == (2, 3, 4)
    torch.testing.assert_close(rec[""].double(), expected_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rec[""].sum(-1), torch.ones(2, 3))


def test_additive_values_default_to_keys():
    m = AdditiveAttention(4)
    query, keys = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    expected, _ = bahdanau64(m, query, keys, keys)
    torch.testing.assert_close(m(query, keys).double(), expected, atol=1e-5, rtol=1e-5)


def test_single_query_is_a_length_one_sequence_and_records_b_1_lk():
    m = AdditiveAttention(4)
    query, keys = torch.randn(2, 4), torch.randn(2, 6, 4)
    with capture(m) as rec:
        out = m(query, keys)
    assert out.shape == (2, 4)
    assert rec[""].shape == (2, 1, 6)
    torch.testing.assert_close(out, m(query[:, None], keys)[:, 0])


def test_zero_score_vector_gives_uniform_weights_and_mean_of_values():
    m = AdditiveAttention(4)
    nn.init.zeros_(m.score.weight)  # every e_ij = 0
    query, keys, values = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    with capture(m) as rec:
        out = m(query, keys, values)
    torch.testing.assert_close(rec[""], torch.full((2, 3, 5), 1 / 5))
    torch.testing.assert_close(out, values.mean(1, keepdim=True).expand(2, 3, 2))


def test_padded_key_gets_zero_weight_and_does_not_matter():
    m = AdditiveAttention(4)
    query, keys, values = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 3)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[0, 1] = padding[1, 3:] = True
    with capture(m) as rec:
        out = m(query, keys, values, key_padding_mask=padding)
    assert torch.all(rec[""][0, :, 1] == 0) and torch.all(rec[""][1, :, 3:] == 0)
    torch.testing.assert_close(rec[""].sum(-1), torch.ones(2, 3))
    expected, _ = bahdanau64(m, query, keys, values, padding)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    keys2, values2 = keys.clone(), values.clone()
    keys2[padding] += 50.0
    values2[padding] -= 80.0
    assert torch.equal(m(query, keys2, values2, key_padding_mask=padding), out)


def test_all_padding_query_gets_zero_context_and_finite_gradients():
    m = AdditiveAttention(4)
    query = torch.randn(2, 4, requires_grad=True)
    keys = torch.randn(2, 3, 4, requires_grad=True)
    padding = torch.tensor([[True, True, True], [False, True, False]])
    out = m(query, keys, key_padding_mask=padding)
    assert torch.all(out[0] == 0) and torch.all(out[1] != 0)
    out.sum().backward()
    assert torch.isfinite(query.grad).all() and torch.isfinite(keys.grad).all()


def test_additive_gradcheck_float64():
    m = AdditiveAttention(3, key_dim=2, attn_dim=4).double()
    query = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    padding = torch.tensor([[False, False, True], [False, False, False]])
    assert torch.autograd.gradcheck(
        lambda q, k, v: m(q, k, v, key_padding_mask=padding), (query, keys, values)
    )


def test_additive_every_parameter_gets_gradient():
    m = AdditiveAttention(4, key_dim=3)
    assert_every_parameter_gets_gradient(m, m(torch.randn(2, 3, 4), torch.randn(2, 5, 3)))


def test_additive_attn_drop_keeps_recorded_weights_normalised():
    m = AdditiveAttention(4, attn_drop=0.5).train()
    with capture(m) as rec:
        m(torch.randn(2, 3, 4), torch.randn(2, 6, 4))
    torch.testing.assert_close(rec[""].sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize(
    "query, keys, values, padding",
    [
        (torch.randn(2, 3, 5), torch.randn(2, 4, 4), None, None),  # query width
        (torch.randn(2, 1, 3, 4), torch.randn(2, 4, 4), None, None),  # query rank
        (torch.randint(0, 3, (2, 3, 4)), torch.randn(2, 4, 4), None, None),  # integer query
        (torch.randn(2, 3, 4), torch.randn(3, 4, 4), None, None),  # batch mismatch
        (torch.randn(2, 3, 4), torch.randn(2, 4, 4).double(), None, None),  # dtype mismatch
        (torch.randn(2, 3, 4), torch.randn(2, 4, 4), torch.randn(2, 5, 2), None),  # values length
        (torch.randn(2, 3, 4), torch.randn(2, 4, 4), None, torch.zeros(2, 4)),  # float mask
        (torch.randn(2, 3, 4), torch.randn(2, 4, 4), None, torch.zeros(2, 3, dtype=torch.bool)),
    ],
)
def test_additive_bad_inputs_raise(query, keys, values, padding):
    with pytest.raises(InputError):
        AdditiveAttention(4)(query, keys, values, key_padding_mask=padding)


def test_additive_bad_constructor_arguments_raise():
    with pytest.raises(InputError):
        AdditiveAttention(0)
    with pytest.raises(InputError):
        AdditiveAttention(4, attn_drop=1.0)


# ------------------------------------------------------------------ SpatialSoftAttention


@pytest.mark.parametrize("gate", [True, False])
def test_soft_attention_matches_float64_loop(gate):
    m = SpatialSoftAttention(5, 4, attn_dim=6, gate=gate)
    features, hidden = torch.randn(2, 5, 3, 4), torch.randn(2, 4)
    with capture(m) as rec:
        out = m(features, hidden)
    expected, expected_alpha = soft_attention64(m, features, hidden)
    assert out.shape == (2, 5)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert rec[""].shape == (2, 3, 4)
    torch.testing.assert_close(rec[""].double(), expected_alpha, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rec[""].sum((1, 2)), torch.ones(2))


def test_soft_attention_uniform_alpha_and_half_gate_by_hand():
    m = SpatialSoftAttention(3, 4)
    nn.init.zeros_(m.score.weight)  # equal scores -> alpha = 1 / (H W)
    nn.init.zeros_(m.gate.weight)
    nn.init.zeros_(m.gate.bias)  # beta = sigmoid(0) = 1/2
    features = torch.randn(2, 3, 2, 5)
    out = m(features, torch.randn(2, 4))
    torch.testing.assert_close(out, 0.5 * features.mean((2, 3)))


def test_soft_attention_gradcheck_float64():
    m = SpatialSoftAttention(3, 2, attn_dim=4).double()
    features = torch.randn(2, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    hidden = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (features, hidden))


def test_soft_attention_every_parameter_gets_gradient():
    m = SpatialSoftAttention(4, 3)
    assert_every_parameter_gets_gradient(m, m(torch.randn(2, 4, 3, 3), torch.randn(2, 3)))


@pytest.mark.parametrize(
    "features, hidden",
    [
        (torch.randn(2, 4, 9), torch.randn(2, 3)),  # no spatial grid
        (torch.randn(2, 5, 3, 3), torch.randn(2, 3)),  # channels
        (torch.randn(2, 4, 3, 3), torch.randn(2, 2)),  # hidden width
        (torch.randn(2, 4, 3, 3), torch.randn(3, 3)),  # batch mismatch
        (torch.randint(0, 4, (2, 4, 3, 3)), torch.randn(2, 3)),  # integer features
    ],
)
def test_soft_attention_bad_inputs_raise(features, hidden):
    with pytest.raises(InputError):
        SpatialSoftAttention(4, 3)(features, hidden)


# ------------------------------------------------------------------ doubly stochastic penalty


def test_penalty_is_zero_when_every_location_totals_one():
    B, L = 2, 6  # T = L steps of uniform attention: sum_t alpha_ti = L * (1 / L) = 1
    alphas = torch.full((B, L, 2, 3), 1 / L)
    assert doubly_stochastic_penalty(alphas).item() == pytest.approx(0.0, abs=1e-12)


def test_penalty_by_hand_for_one_hot_attention_and_padding():
    T, H, W = 4, 2, 3
    alphas = torch.zeros(2, T, H, W)
    alphas[:, :, 0, 0] = 1.0  # every step looks at location (0, 0)
    # location (0, 0) totals T, the other H*W - 1 locations total 0
    expected = (1 - T) ** 2 + (H * W - 1)
    assert doubly_stochastic_penalty(alphas).item() == pytest.approx(expected)
    padding = torch.tensor([[False, True, True, True], [False, False, True, True]])
    # sample 0 keeps one step: (1 - 1)^2 + 5; sample 1 keeps two: (1 - 2)^2 + 5; mean of both
    expected = ((H * W - 1) + (1 + H * W - 1)) / 2
    assert doubly_stochastic_penalty(alphas, padding_mask=padding).item() == pytest.approx(expected)


def test_penalty_trains_the_attention_through_differentiable_capture():
    m = SpatialSoftAttention(3, 4)
    features = torch.randn(2, 3, 2, 2)
    with capture(m, differentiable=True) as rec:
        for _ in range(3):
            m(features, torch.randn(2, 4))
        alphas = torch.stack(rec.calls(""), dim=1)  # (B, T, H, W)
    assert alphas.shape == (2, 3, 2, 2)
    doubly_stochastic_penalty(alphas).backward()
    assert m.score.weight.grad is not None and m.score.weight.grad.abs().sum() > 0


def test_penalty_bad_inputs_raise():
    with pytest.raises(InputError):
        doubly_stochastic_penalty(torch.rand(2, 3, 4))
    with pytest.raises(InputError):
        doubly_stochastic_penalty(torch.rand(2, 3, 4, 4), padding_mask=torch.zeros(2, 4, dtype=torch.bool))
