"""Attention Branch Network pieces against a float64 rebuild of the official ResNet-ABN branch."""

import dataclasses
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.branch import AttentionBranchHead, AttentionMechanism, BranchOutput, apply_attention
from tests.layers._reference import bn64, randomize_norms

REFERENCE_KEYS = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "abn" / "abn_cifar_resnet20_keys.txt"
)
# official name -> ours (the mapping the module docstring documents)
OFFICIAL_NAMES = {
    "bn_att": "norm",
    "att_conv": "to_classes",
    "bn_att2": "norm_classes",
    "att_conv2": "class_conv",
    "att_conv3": "map_conv",
    "bn_att3": "map_norm",
}


def conv1x1_64(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return torch.einsum("oc,bchw->bohw", conv.weight.detach().double()[:, :, 0, 0], x)


def conv_same64(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A k x k 'same' convolution as a sum over kernel offsets of shifted, zero-padded inputs."""
    k = conv.kernel_size[0]
    H, W = x.shape[-2:]
    padded = F.pad(x, (k // 2,) * 4)
    w = conv.weight.detach().double()
    out = 0.0
    for dy in range(k):
        for dx in range(k):
            out = out + torch.einsum("oc,bchw->bohw", w[:, :, dy, dx], padded[:, :, dy : dy + H, dx : dx + W])
    return out


def branch64(m: AttentionBranchHead, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ResNet.forward of the official code from bn_att on, eval mode, float64: (att logits, M)."""
    ax = bn64(f.double(), m.norm)
    ax = bn64(conv1x1_64(ax, m.to_classes), m.norm_classes).clamp_min(0.0)
    att = 1.0 / (1.0 + torch.exp(-bn64(conv_same64(ax, m.map_conv), m.map_norm)))
    logits = conv1x1_64(ax, m.class_conv).mean(dim=(2, 3))
    return logits, att


# ------------------------------------------------------------------ attention mechanism


def test_apply_attention_by_hand():
    f = torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(apply_attention(f, torch.zeros(2, 1, 3, 4)), f)
    torch.testing.assert_close(apply_attention(f, torch.ones(2, 1, 3, 4)), 2 * f)
    m = torch.rand(2, 1, 3, 4)
    expected = torch.stack([(1 + m[:, 0]) * f[:, c] for c in range(5)], dim=1)  # M shared by every channel
    torch.testing.assert_close(apply_attention(f, m), expected)
    torch.testing.assert_close(AttentionMechanism()(f, m), expected)


def test_apply_attention_on_video():
    f, m = torch.randn(2, 3, 4, 5, 5), torch.rand(2, 1, 4, 5, 5)
    torch.testing.assert_close(apply_attention(f, m), (1 + m) * f)


@pytest.mark.parametrize(
    "f, m",
    [
        (torch.randn(2, 5, 3, 4), torch.rand(2, 5, 3, 4)),  # per-channel map
        (torch.randn(2, 5, 3, 4), torch.rand(2, 1, 4, 4)),  # spatial mismatch
        (torch.randn(2, 5, 3, 4), torch.rand(1, 1, 3, 4)),  # batch mismatch
        (torch.randn(2, 5, 12), torch.rand(2, 1, 12)),  # 1-D features
        (torch.randint(0, 3, (2, 5, 3, 4)), torch.rand(2, 1, 3, 4)),  # integer features
        (torch.randn(2, 5, 3, 4), torch.ones(2, 1, 3, 4, dtype=torch.bool)),  # boolean map
    ],
)
def test_apply_attention_bad_inputs_raise(f, m):
    with pytest.raises(InputError):
        apply_attention(f, m)


# ------------------------------------------------------------------ attention branch head


@pytest.mark.parametrize("kernel", [3, 1])
def test_head_matches_float64_rebuild_and_records_the_map(kernel):
    m = randomize_norms(AttentionBranchHead(8, 5, map_kernel_size=kernel), mean_std=0.3).eval()
    f = torch.randn(3, 8, 6, 7)
    with capture(m) as rec:
        out = m(f)
    logits, att = branch64(m, f)
    assert isinstance(out, BranchOutput)
    assert out.logits.shape == (3, 5) and out.attention.shape == (3, 1, 6, 7)
    torch.testing.assert_close(out.logits.double(), logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.attention.double(), att, atol=1e-6, rtol=1e-5)
    assert rec[""] is out.attention or torch.equal(rec[""], out.attention)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.logits = out.attention


def test_zero_map_conv_gives_one_half_everywhere():
    m = AttentionBranchHead(8, 5).eval()  # fresh BN(1): mean 0, var 1, gamma 1, beta 0
    nn.init.zeros_(m.map_conv.weight)
    out = m(torch.randn(2, 8, 4, 4))
    torch.testing.assert_close(out.attention, torch.full((2, 1, 4, 4), 0.5))


def test_layout_loads_the_official_branch_shapes():
    if not REFERENCE_KEYS.exists():
        pytest.skip("official ABN reference material not available")
    official = {}
    for line in REFERENCE_KEYS.read_text().splitlines():
        key, shape = re.match(r"(\S+) \((.*)\)", line).groups()
        official[key] = tuple(int(s) for s in shape.split(",") if s.strip())
    m = AttentionBranchHead(64, 10)  # CIFAR ResNet-20-ABN: 64 channels, 10 classes
    for key, value in m.state_dict().items():
        module, _, leaf = key.partition(".")
        theirs = {v: k for k, v in OFFICIAL_NAMES.items()}[module] + "." + leaf
        assert official[theirs] == tuple(value.shape), theirs


def test_head_gradcheck_float64():
    m = randomize_norms(AttentionBranchHead(3, 2), mean_std=0.3).double().eval()
    f = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)

    def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = m(x)
        return out.logits, out.attention

    assert torch.autograd.gradcheck(both, (f,))


def test_head_every_parameter_gets_gradient():
    m = AttentionBranchHead(8, 5).train()
    out = m(torch.randn(4, 8, 5, 5))
    loss = (out.logits * torch.randn_like(out.logits)).sum() + (
        out.attention * torch.randn_like(out.attention)
    ).sum()
    loss.backward()
    for name, param in m.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "f",
    [torch.randn(2, 8, 16), torch.randn(2, 7, 4, 4), torch.randint(0, 3, (2, 8, 4, 4))],
    ids=["rank", "channels", "integer"],
)
def test_head_bad_inputs_raise(f):
    with pytest.raises(InputError):
        AttentionBranchHead(8, 5)(f)


def test_head_even_map_kernel_raises():
    with pytest.raises(InputError):
        AttentionBranchHead(8, 5, map_kernel_size=2)
