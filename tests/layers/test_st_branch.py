"""The ST-ABN attention heads against float64 re-derivations of the seed's equations."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.layers.st_branch import STAttentionBranchHead, STAttentionFusion, TemporalAttention
from tests.layers._reference import randomize_norms


def bn3d64(x: torch.Tensor, bn: torch.nn.BatchNorm3d) -> torch.Tensor:
    def c(t: torch.Tensor) -> torch.Tensor:
        return t.detach().double()[None, :, None, None, None]

    return (x - c(bn.running_mean)) / torch.sqrt(c(bn.running_var) + bn.eps) * c(bn.weight) + c(bn.bias)


def pointwise64(x: torch.Tensor, conv: torch.nn.Conv3d) -> torch.Tensor:
    return torch.einsum("oc,bcthw->bothw", conv.weight.detach().double()[:, :, 0, 0, 0], x)


def test_temporal_attention_folds_time_into_channels():
    m = TemporalAttention(4, 5, channels=3, hidden=6).eval()
    a = torch.randn(2, 4, 5, 6, 7)
    h = pointwise64(a.double(), m.compress)  # (B, c, T, H, W)
    folded = torch.cat([h[:, :, t] for t in range(5)], dim=1)  # frame-major channels: [t0 c0..c2, t1 c0..]
    z = (
        F.conv2d(folded, m.frames.weight.double(), m.frames.bias.double(), padding=1)
        .clamp_min(0)
        .mean((2, 3))
    )
    fc1, fc2 = m.fc[0], m.fc[2]
    z = (z @ fc1.weight.double().T + fc1.bias.double()).clamp_min(
        0
    ) @ fc2.weight.double().T + fc2.bias.double()
    torch.testing.assert_close(m(a).double(), torch.sigmoid(z), atol=1e-6, rtol=1e-5)
    with pytest.raises(InputError, match="built for 5 frames"):
        m(torch.randn(2, 4, 6, 6, 7))


def test_branch_head_and_fusion_against_float64():
    head = randomize_norms(STAttentionBranchHead(6, 4, 3, temporal_channels=2, temporal_hidden=5)).eval()
    f = torch.randn(2, 6, 3, 4, 4)
    out = head(f)
    a = bn3d64(pointwise64(bn3d64(f.double(), head.norm), head.to_classes), head.norm_classes).clamp_min(0)
    torch.testing.assert_close(
        out.logits.double(), pointwise64(a, head.classifier).mean((2, 3, 4)), atol=1e-6, rtol=1e-5
    )
    spatial = torch.sigmoid(bn3d64(pointwise64(a, head.spatial.conv), head.spatial.norm))
    torch.testing.assert_close(out.spatial.double(), spatial, atol=1e-6, rtol=1e-5)

    fusion = randomize_norms(STAttentionFusion(6)).eval()
    x = torch.randn(2, 6, 3, 4, 4)
    ms, mt = torch.rand(2, 1, 3, 4, 4), torch.rand(2, 3)
    cat = torch.cat([(1 + ms.double()) * x.double(), mt.double()[:, None, :, None, None] * x.double()], 1)
    expected = bn3d64(pointwise64(cat, fusion.conv), fusion.norm).clamp_min(0)
    torch.testing.assert_close(fusion(x, ms, mt).double(), expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(InputError, match="do not fit"):
        fusion(x, ms[:, :, :2], mt)


def test_capture_records_both_maps_and_every_parameter_trains():
    head = STAttentionBranchHead(6, 4, 3)
    with capture(head) as rec:
        out = head(torch.randn(2, 6, 3, 4, 4))
    assert rec["spatial"].shape == (2, 1, 3, 4, 4) and rec["temporal"].shape == (2, 3)
    (out.logits.sum() + out.spatial.sum() + out.temporal.sum()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck_float64():
    m = TemporalAttention(3, 4, channels=2, hidden=3).double()
    a = torch.randn(1, 3, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (a,))
