import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain import attention_layers, capture, features
from attnlab.layers.attention import MultiHeadAttention


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        self.blocks = nn.ModuleList([MultiHeadAttention(16, num_heads=2) for _ in range(2)])
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h.mean(1))


def test_capture_names_every_layer_and_cleans_up():
    model = Tiny()
    assert set(attention_layers(model)) == {"blocks.0", "blocks.1"}
    with capture(model) as rec:
        model(torch.randn(2, 5, 4))
        model(torch.randn(2, 5, 4))
    assert set(rec) == {"blocks.0", "blocks.1"}
    assert rec["blocks.1"].shape == (2, 2, 5, 5)
    assert len(rec.calls("blocks.0")) == 2
    assert all(m._attn_sink is None for m in attention_layers(model).values())


def test_capture_cleans_up_after_an_exception():
    model = Tiny()
    with pytest.raises(RuntimeError), capture(model):
        raise RuntimeError("boom")
    assert all(m._attn_sink is None for m in attention_layers(model).values())


def test_capture_errors():
    model = Tiny()
    with pytest.raises(ConfigError, match=r"did you mean 'blocks\.0'"), capture(model, layers=["block.0"]):
        pass
    with pytest.raises(ConfigError, match="no attnlab attention"), capture(nn.Linear(2, 2)):
        pass
    with capture(model, layers=["blocks.0"]) as rec:
        with pytest.raises(ConfigError, match="nested"), capture(model):
            pass
        with pytest.raises(KeyError, match="not called"):
            rec["blocks.0"]


def test_differentiable_capture_gives_gradients_wrt_weights():
    model = Tiny()
    x = torch.randn(2, 5, 4)
    with capture(model, differentiable=True) as rec:
        score = model(x)[:, 0].sum()
    (grad,) = torch.autograd.grad(score, rec["blocks.1"])
    assert grad.shape == (2, 2, 5, 5) and grad.abs().sum() > 0


def test_features_and_gradients():
    model = Tiny()
    with features(model, ["embed", "head"], keep_grad=True) as feats:
        out = model(torch.randn(2, 5, 4))
        out.sum().backward()
    assert feats["embed"].shape == (2, 5, 16)
    torch.testing.assert_close(feats.grad("head"), torch.ones(2, 3))
    assert not model.embed._forward_hooks
    with pytest.raises(ConfigError, match="did you mean 'embed'"), features(model, ["embedd"]):
        pass
    with features(model, ["embed"]) as no_grad_feats:
        model(torch.randn(1, 5, 4))
    with pytest.raises(ConfigError, match="keep_grad"):
        no_grad_feats.grad("embed")


def test_features_rejects_non_tensor_outputs():
    lstm = nn.Sequential(nn.LSTM(4, 4, batch_first=True))
    with features(lstm, ["0"]), pytest.raises(InputError, match="returns tuple"):
        lstm(torch.randn(1, 3, 4))
