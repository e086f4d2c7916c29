import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain import attention_layers, capture
from attnlab.explain.attention_maps import attention_relevance, attention_rollout, gradient_relevance, rollout
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.transformer import TransformerBlock
from attnlab.models import create_model


class DiagonalEncoder(nn.Module):
    """Every token may attend only to itself: each attention matrix is the identity."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(16, num_heads=2) for _ in range(3))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.eye(x.shape[1], dtype=torch.bool)
        for block in self.blocks:
            x = block(x, attn_mask=mask)
        return self.head(x.mean(1))


class OneAttention(nn.Module):
    """score = head(sum_i attn(x)_i): d score / d A has a closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(8, num_heads=2)
        self.head = nn.Linear(8, 3)
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.attn(x)
        if self.fail:
            raise RuntimeError("boom")
        return self.head(out.sum(1))


def tiny_classifier() -> nn.Module:
    return create_model("transformer-classifier-tiny")


def test_rollout_of_identity_attention_is_the_identity():
    x = torch.randn(2, 5, 16)
    got = attention_rollout(DiagonalEncoder(), x)
    torch.testing.assert_close(got, torch.eye(5).expand(2, 5, 5))


def test_rollout_head_fusions_by_hand():
    identity, swap = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    layer = torch.stack([identity, swap])[None]  # (1, 2 heads, 2, 2)
    expected = {
        "mean": torch.tensor([[0.75, 0.25], [0.25, 0.75]]),  # 0.5 I + 0.5 * 0.5 (I + swap)
        "max": torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]),  # 0.5 I + 0.5 ones, rows renormalised
        "min": torch.eye(2),  # 0.5 I + 0.5 zeros, rows renormalised
    }
    for fusion, one in expected.items():
        torch.testing.assert_close(rollout([layer], head_fusion=fusion)[0], one)
        torch.testing.assert_close(rollout([layer, layer], head_fusion=fusion)[0], one @ one)


def test_rollout_on_the_classifier_is_row_stochastic_and_per_example():
    model = tiny_classifier()
    tokens = torch.randint(24, (3, 9))
    joint = attention_rollout(model, tokens, head_fusion="max")
    assert joint.shape == (3, 10, 10)
    torch.testing.assert_close(joint.sum(-1), torch.ones(3, 10))
    torch.testing.assert_close(attention_rollout(model, tokens[1:2], head_fusion="max")[0], joint[1])
    first = attention_rollout(model, tokens, layers=["blocks.0.attn"])
    with capture(model) as rec:
        model.eval()(tokens)
    mixed = 0.5 * rec["blocks.0.attn"].mean(1) + 0.5 * torch.eye(10)
    torch.testing.assert_close(first, mixed)


def test_gradient_relevance_by_hand():
    model = OneAttention().double()
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    got = attention_relevance(model, x, targets=torch.tensor([2, 0]))
    with torch.no_grad(), capture(model) as rec:
        model(x)
        weights = rec["attn"]  # (2, 2 heads, 4, 4)
        values = model.attn.kv_proj(x)[..., 8:].view(2, 4, 2, 4)  # (B, N, H, Dh)
        u = model.head.weight[[2, 0]] @ model.attn.proj.weight  # d score / d concat(heads), (B, 8)
        grad = torch.einsum("bhd,bjhd->bhj", u.view(2, 2, 4), values)[:, :, None, :].expand(2, 2, 4, 4)
        expected = torch.eye(4) + (grad * weights).clamp(min=0).mean(1)  # one layer: R = I + A_bar I
    assert (grad * weights).clamp(min=0).sum() > 0
    torch.testing.assert_close(got.maps, expected)
    torch.testing.assert_close(got.targets, torch.tensor([2, 0]))


def test_relevance_on_the_classifier_batches_and_restores_state():
    model = tiny_classifier().train()
    model.requires_grad_(False)
    tokens = torch.randint(24, (3, 7))
    batch = attention_relevance(model, tokens)
    assert batch.maps.shape == (3, 8, 8)
    assert (batch.maps - torch.eye(8)).abs().sum() > 0
    torch.testing.assert_close(batch.targets, model.eval()(tokens).logits.argmax(1))
    model.train()
    for i in range(3):
        torch.testing.assert_close(attention_relevance(model, tokens[i : i + 1]).maps[0], batch.maps[i])
    assert all(m.training for m in model.modules())
    assert not any(p.requires_grad or p.grad is not None for p in model.parameters())
    assert all(m._attn_sink is None for m in attention_layers(model).values())


def test_state_restored_after_an_exception():
    model = OneAttention().train()
    model.fail = True
    for explain in (attention_relevance, attention_rollout):
        with pytest.raises(RuntimeError, match="boom"):
            explain(model, torch.randn(2, 4, 8))
    assert model.attn._attn_sink is None
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


class CrossAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(8, num_heads=2)
        self.cross = MultiHeadAttention(8, num_heads=2)
        self.shared = MultiHeadAttention(8, num_heads=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shared(self.shared(self.attn(x)))
        return self.cross(x[:, :2], x).sum(1)


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(8, num_heads=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1)


def test_errors():
    model = CrossAttention()
    x = torch.randn(2, 5, 8)
    with pytest.raises(ConfigError, match="unknown head fusion"):
        attention_rollout(model, x, head_fusion="median")
    with pytest.raises(ConfigError, match="did you mean 'cross'"):
        attention_rollout(model, x, layers=["crosss"])
    with pytest.raises(InputError, match="self-attention"):
        attention_rollout(model, x, layers=["attn", "cross"])
    with pytest.raises(ConfigError, match="ran 2 times"):
        attention_relevance(model, x, layers=["shared"])
    with pytest.raises(InputError, match="batched"):
        attention_rollout(model, torch.randn(5))
    with pytest.raises(InputError, match="no attention layer was called"):
        attention_rollout(Unused(), x)
    assert attention_rollout(model, x, layers=["attn"]).shape == (2, 5, 5)


def test_gradient_relevance_two_layers_by_hand():
    weights = [torch.full((1, 1, 2, 2), 0.5), torch.eye(2)[None, None]]
    grads = [
        torch.tensor([[1.0, -1.0], [1.0, 1.0]])[None, None],
        torch.tensor([[2.0, 0.0], [0.0, 0.0]])[None, None],
    ]
    # layer 1: A_bar = [[.5, 0], [.5, .5]] (negative evidence clipped), R = I + A_bar
    # layer 2: A_bar = [[2, 0], [0, 0]], R = R + A_bar R
    expected = torch.tensor([[4.5, 0.0], [0.5, 1.5]])
    torch.testing.assert_close(gradient_relevance(weights, grads)[0], expected)


def test_rollout_multiplies_later_layers_on_the_left():
    to_first = torch.tensor([[1.0, 0.0], [1.0, 0.0]])[None, None]  # every token reads token 0
    to_second = torch.tensor([[0.0, 1.0], [0.0, 1.0]])[None, None]  # then every token reads token 1
    # residual mixing: [[1, 0], [.5, .5]] then [[.5, .5], [0, 1]]; rollout = second @ first
    expected = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    torch.testing.assert_close(rollout([to_first, to_second])[0], expected)
