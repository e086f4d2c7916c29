"""ResidualAttentionModule against a float64 functional rebuild of the official Attention-56 graph."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.residual_attention import PreActBottleneck, ResidualAttentionModule
from tests.layers._reference import bn64, randomize_norms


def conv64(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return F.conv2d(x, conv.weight.detach().double(), None, conv.stride, conv.padding)


def relu(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_min(0.0)


def unit64(x: torch.Tensor, u: PreActBottleneck) -> torch.Tensor:
    """x + conv1x1(relu(bn(conv3x3(relu(bn(conv1x1(relu(bn(x))))))))) (He et al. 2016, Fig. 4e)."""
    pre = relu(bn64(x, u.norm1))
    h = conv64(pre, u.conv1)
    h = conv64(relu(bn64(h, u.norm2)), u.conv2)
    h = conv64(relu(bn64(h, u.norm3)), u.conv3)
    return h + (x if u.shortcut is None else conv64(pre, u.shortcut))


def units64(x: torch.Tensor, seq: nn.Sequential) -> torch.Tensor:
    for u in seq:
        x = unit64(x, u)
    return x


def caffe_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, ceil_mode=True)  # Caffe pooling rounds the output size up


def interp(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)  # Caffe Interp


def module64(m: ResidualAttentionModule, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The AttentionA/B/C graph of Attention-56-deploy.prototxt, layer by layer; returns (out, M)."""
    x = units64(x.double(), m.pre)
    trunk = units64(x, m.trunk)
    down = []  # mask/down_sample/res{i}_*
    h = x
    for level in range(m.depth):
        h = units64(caffe_pool(h), m.down[level])
        down.append(h)
    for level in reversed(range(m.depth - 1)):
        skip = units64(down[level], m.skip[level])  # mask/skip/res{i}
        h = units64(skip + interp(h, skip), m.up[level])  # mask/up_sample{i} -> up_sample/res{i}_1
    h = relu(bn64(interp(h, x), m.mask_head[0]))  # interp_1 -> bn -> relu
    h = conv64(relu(bn64(conv64(h, m.mask_head[2]), m.mask_head[3])), m.mask_head[5])  # linear_1, linear_2
    mask = 1.0 / (1.0 + torch.exp(-h))
    fusion = trunk * mask + trunk  # Eltwise PROD, then SUM
    return units64(fusion, m.post), mask


def test_pre_activation_unit_matches_float64_with_projection_and_stride():
    u = randomize_norms(PreActBottleneck(8, 16, stride=2)).eval()
    x = torch.randn(2, 8, 7, 6)
    out = u(x)
    assert out.shape == (2, 16, 4, 3)
    torch.testing.assert_close(out.double(), unit64(x.double(), u), atol=1e-5, rtol=1e-5)
    identity = randomize_norms(PreActBottleneck(8)).eval()
    assert identity.shortcut is None
    torch.testing.assert_close(identity(x).double(), unit64(x.double(), identity), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("depth", "size"), [(1, (6, 5)), (2, (9, 8)), (3, (13, 11))])
def test_module_matches_float64_rebuild_of_the_official_graph(depth, size):
    m = randomize_norms(ResidualAttentionModule(8, depth=depth, p=1, t=2, r=1)).eval()
    x = torch.randn(2, 8, *size)
    with capture(m) as rec:
        out = m(x)
    expected, expected_mask = module64(m, x)
    assert out.shape == x.shape
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert rec[""].shape == x.shape
    torch.testing.assert_close(rec[""].double(), expected_mask, atol=1e-6, rtol=1e-5)
    assert rec[""].min() >= 0 and rec[""].max() <= 1


def test_unit_counts_follow_p_t_r():
    m = ResidualAttentionModule(8, p=2, t=3, r=2, depth=3)
    assert (len(m.pre), len(m.trunk), len(m.post)) == (2, 3, 2)
    # r units per bottom-up level, 2r at the deepest, a skip unit and r up units per other level
    assert [len(d) for d in m.down] == [2, 2, 4]
    assert [len(s) for s in m.skip] == [1, 1] and [len(u) for u in m.up] == [2, 2]


def test_stage_one_of_attention_56_pools_56_to_7():
    m = ResidualAttentionModule(4, depth=3).eval()
    sizes = []
    for down in m.down:
        down.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
    m(torch.randn(1, 4, 56, 56))
    assert sizes == [(28, 28), (14, 14), (7, 7)]  # Sec. 4.1: 56x56 stage, mask down to 7x7


def test_zero_last_mask_conv_gives_m_one_half_and_output_one_and_a_half_trunk():
    m = randomize_norms(ResidualAttentionModule(8, p=0, depth=2)).eval()
    nn.init.zeros_(m.mask_head[5].weight)  # M = sigmoid(0) = 1/2 everywhere
    x = torch.randn(2, 8, 8, 8)
    with capture(m) as rec:
        out = m(x)
    torch.testing.assert_close(rec[""], torch.full_like(x, 0.5))
    torch.testing.assert_close(out, 1.5 * m.trunk(x))


def test_mask_driven_to_zero_leaves_the_trunk_output():
    m = randomize_norms(ResidualAttentionModule(8, p=0, depth=2)).double().eval()
    bn = m.mask_head[3]
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.fill_(10.0)  # relu(bn(.)) = 10 everywhere
        m.mask_head[5].weight.fill_(-1.0)  # logits = -10 * 8 = -80, sigmoid ~ 2e-35
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    with capture(m) as rec:
        out = m(x)
    assert rec[""].max() < 1e-30
    torch.testing.assert_close(out, m.trunk(x), atol=1e-12, rtol=1e-12)


def test_gradcheck_float64():
    m = randomize_norms(ResidualAttentionModule(4, depth=2, t=1)).double().eval()
    x = torch.randn(1, 4, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


def test_every_parameter_gets_gradient():
    m = ResidualAttentionModule(8, depth=2).train()
    out = m(torch.randn(2, 8, 8, 8))
    (out * torch.randn_like(out)).sum().backward()
    for name, param in m.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "x",
    [
        torch.randn(2, 8, 8),
        torch.randn(2, 6, 8, 8),
        torch.randint(0, 3, (2, 8, 8, 8)),
        torch.randn(1, 8, 2, 9),
    ],
    ids=["rank", "channels", "integer", "too-small-for-depth"],
)
def test_bad_inputs_raise(x):
    with pytest.raises(InputError):
        ResidualAttentionModule(8, depth=2)(x)


def test_bad_constructor_arguments_raise():
    with pytest.raises(InputError):
        ResidualAttentionModule(8, depth=0)
    with pytest.raises(InputError):
        PreActBottleneck(8, stride=0)
