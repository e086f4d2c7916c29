"""DINO head against the official ``DINOHead`` golden (README: fp32 vs fp64 differ by 2.2e-7) and
against a float64 eager computation written from the paper's description."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError
from attnlab.models.vit.dino_head import DINOHead, DINOHeadConfig
from tests.models.dino._reference import load, reference


def golden_head() -> tuple[DINOHead, dict]:
    golden = load("dino_head_golden.pt")
    head = DINOHead(DINOHeadConfig(**golden["config"]))
    head.load_state_dict(golden["state_dict"])  # strict: the official key names, weight_g/weight_v included
    return head.eval(), golden


def test_output_equals_the_official_head():
    head, golden = golden_head()
    with torch.no_grad():
        out = head(golden["input"])
    torch.testing.assert_close(out, golden["output"], atol=1e-6, rtol=0)


def test_state_dict_keys_and_shapes_are_the_released_ones():
    lines = (reference() / "dino_keys.txt").read_text().splitlines()
    expected = {}
    for line in lines:
        if line.startswith("dino_head."):
            name, shape = line.removeprefix("dino_head.").split(" ", 1)
            expected[name] = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
    head = DINOHead(DINOHeadConfig(**load("dino_head_golden.pt")["config"]))
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == expected


def float64_head(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Linear-GELU-Linear-GELU-Linear, L2-normalise, then rows of v rescaled to length g."""
    s = {k: v.double() for k, v in state.items()}
    h = F.gelu(x.double() @ s["mlp.0.weight"].T + s["mlp.0.bias"])
    h = F.gelu(h @ s["mlp.2.weight"].T + s["mlp.2.bias"])
    h = h @ s["mlp.4.weight"].T + s["mlp.4.bias"]
    h = h / h.norm(dim=1, keepdim=True)
    w = (
        s["last_layer.weight_g"]
        * s["last_layer.weight_v"]
        / s["last_layer.weight_v"].norm(dim=1, keepdim=True)
    )
    return h @ w.T


def test_equals_a_float64_computation_for_fresh_weights():
    config = DINOHeadConfig(in_dim=24, out_dim=40, nlayers=3, hidden_dim=32, bottleneck_dim=8)
    head = DINOHead(config)
    with torch.no_grad():
        head.last_layer.weight_g.mul_(torch.rand(40, 1) + 0.5)  # g != 1 exercises the rescaling
        for p in head.mlp.parameters():
            p.normal_()
    x = torch.randn(7, 24)
    expected = float64_head(head.state_dict(), x)
    torch.testing.assert_close(head(x).double(), expected, atol=1e-5, rtol=1e-5)


def test_norm_last_layer_freezes_g_at_one_and_bounds_the_output():
    head = DINOHead(DINOHeadConfig(in_dim=16, out_dim=12, hidden_dim=20, bottleneck_dim=6))
    assert torch.equal(head.last_layer.weight_g, torch.ones(12, 1))
    assert not head.last_layer.weight_g.requires_grad
    out = head(torch.randn(5, 16))
    # cosine similarities to unit prototypes
    assert out.abs().max() <= 1 + 1e-6
    out.sum().backward()
    assert head.last_layer.weight_g.grad is None
    assert all(p.grad is not None for n, p in head.named_parameters() if n != "last_layer.weight_g")

    free = DINOHead(
        DINOHeadConfig(in_dim=16, out_dim=12, hidden_dim=20, bottleneck_dim=6, norm_last_layer=False)
    )
    free(torch.randn(5, 16)).sum().backward()
    assert free.last_layer.weight_g.grad is not None


def test_one_layer_and_batch_norm_variants_have_the_official_structure():
    one = DINOHead(DINOHeadConfig(in_dim=16, out_dim=12, nlayers=1, bottleneck_dim=6))
    assert sorted(one.state_dict()) == [
        "last_layer.weight_g",
        "last_layer.weight_v",
        "mlp.bias",
        "mlp.weight",
    ]
    bn = DINOHead(
        DINOHeadConfig(in_dim=16, out_dim=12, nlayers=3, hidden_dim=20, bottleneck_dim=6, use_bn=True)
    )
    kinds = [type(m).__name__ for m in bn.mlp]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Linear", "BatchNorm1d", "GELU", "Linear"]
    assert bn(torch.randn(4, 16)).shape == (4, 12)


def test_bad_config_and_input_are_one_line_errors():
    with pytest.raises(ConfigError, match="nlayers"):
        DINOHead(DINOHeadConfig(nlayers=0))
    with pytest.raises(ConfigError, match="bottleneck_dim"):
        DINOHead(DINOHeadConfig(bottleneck_dim=0))
    head = DINOHead(DINOHeadConfig(in_dim=16, out_dim=12, hidden_dim=20, bottleneck_dim=6))
    with pytest.raises(InputError, match=r"\(N, 16\)"):
        head(torch.randn(4, 15))
