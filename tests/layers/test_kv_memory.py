"""KeyValueMemory against a float64 loop over the hops of KV-MemNN / MemN2N."""

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.kv_memory import KeyValueMemory


def memory64(m: KeyValueMemory, query, keys, values, padding=None):
    """Sec. 3 of Miller et al.: per hop p_i = softmax(u . k_i), o = sum_i p_i v_i, u <- R(u + o)."""
    B, M, _ = keys.shape
    outs, hops = [], [torch.zeros(B, M, dtype=torch.float64) for _ in range(m.num_hops)]
    for b in range(B):
        u = query[b].double()
        keep = torch.ones(M, dtype=torch.bool) if padding is None else ~padding[b]
        for hop in range(m.num_hops):
            scores = torch.stack([u @ keys[b, i].double() for i in range(M)])
            ex = torch.where(keep, torch.exp(scores - scores[keep].max()), torch.zeros_like(scores))
            p = ex / ex.sum()
            o = sum(p[i] * values[b, i].double() for i in range(M))
            u = u + o
            if m.hop_proj is not None:
                u = m.hop_proj[hop].weight.detach().double() @ u
            hops[hop][b] = p
        outs.append(u)
    return torch.stack(outs), hops


@pytest.mark.parametrize("hop_linear", [True, False])
def test_matches_float64_loop_and_records_every_hop(hop_linear):
    m = KeyValueMemory(6, num_hops=3, hop_linear=hop_linear)
    query, keys, values = torch.randn(2, 6), torch.randn(2, 5, 6), torch.randn(2, 5, 6)
    with capture(m) as rec:
        out = m(query, keys, values)
    expected, expected_hops = memory64(m, query, keys, values)
    assert out.shape == (2, 6)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    calls = rec.calls("")
    assert len(calls) == 3
    for got, want in zip(calls, expected_hops, strict=True):
        assert got.shape == (2, 5)
        torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got.sum(-1), torch.ones(2))


def test_key_equal_to_scaled_query_reads_its_value():
    D, M, target = 8, 6, 4
    query = torch.randn(3, D)
    keys, values = torch.randn(3, M, D), torch.randn(3, M, D)
    keys[:, target] = 1000.0 * query  # u . k_target = 1000 |u|^2 dwarfs every other score
    m = KeyValueMemory(D, num_hops=1, hop_linear=False)
    with capture(m) as rec:
        out = m(query, keys, values)
    torch.testing.assert_close(rec[""], nn.functional.one_hot(torch.full((3,), target), M).float())
    torch.testing.assert_close(out, query + values[:, target])
    linear = KeyValueMemory(D, num_hops=1, hop_linear=True)
    with torch.no_grad():
        linear.hop_proj[0].weight.copy_(2.0 * torch.eye(D))  # R = 2 I
    torch.testing.assert_close(linear(query, keys, values), 2.0 * (query + values[:, target]))


def test_padded_slot_gets_zero_weight_every_hop_and_does_not_matter():
    m = KeyValueMemory(4, num_hops=2)
    query, keys, values = torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[0, 0] = padding[1, 2:4] = True
    with capture(m) as rec:
        out = m(query, keys, values, key_padding_mask=padding)
    for p in rec.calls(""):
        assert torch.all(p[padding] == 0)
        torch.testing.assert_close(p.sum(-1), torch.ones(2))
    expected, _ = memory64(m, query, keys, values, padding)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    keys2, values2 = keys.clone(), values.clone()
    keys2[padding] = 100.0
    values2[padding] = -7.0
    assert torch.equal(m(query, keys2, values2, key_padding_mask=padding), out)


def test_empty_memory_reads_nothing():
    m = KeyValueMemory(4, num_hops=2, hop_linear=False)
    query = torch.randn(2, 4, requires_grad=True)
    out = m(
        query, torch.randn(2, 3, 4), torch.randn(2, 3, 4), key_padding_mask=torch.ones(2, 3, dtype=torch.bool)
    )
    assert torch.equal(out, query)  # o = 0 at every hop
    out.sum().backward()
    assert torch.isfinite(query.grad).all()


def test_gradcheck_float64():
    m = KeyValueMemory(3, num_hops=2).double()
    query = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    padding = torch.tensor([[False, True, False, False], [False, False, False, False]])
    assert torch.autograd.gradcheck(
        lambda q, k, v: m(q, k, v, key_padding_mask=padding), (query, keys, values)
    )


def test_every_parameter_gets_gradient():
    m = KeyValueMemory(4, num_hops=3)
    assert len(list(m.parameters())) == 3  # one R per hop
    out = m(torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in m.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "query, keys, values, padding",
    [
        (torch.randn(2, 1, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4), None),  # query rank
        (torch.randn(2, 3), torch.randn(2, 5, 4), torch.randn(2, 5, 4), None),  # query width
        (torch.randn(2, 4), torch.randn(2, 5, 3), torch.randn(2, 5, 4), None),  # key width
        (torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 6, 4), None),  # M mismatch
        (torch.randn(2, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4), None),  # batch mismatch
        (torch.randint(0, 2, (2, 4)), torch.randn(2, 5, 4), torch.randn(2, 5, 4), None),  # integer
        (torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4), torch.zeros(2, 5)),  # float mask
        (torch.randn(2, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4), torch.zeros(2, 4, dtype=torch.bool)),
    ],
)
def test_bad_inputs_raise(query, keys, values, padding):
    with pytest.raises(InputError):
        KeyValueMemory(4)(query, keys, values, key_padding_mask=padding)


def test_bad_constructor_arguments_raise():
    with pytest.raises(InputError):
        KeyValueMemory(4, num_hops=0)
