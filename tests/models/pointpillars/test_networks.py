"""PointNet, scatter, head layout and the detector's outputs, against eager float64 maths."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models import create_model
from attnlab.models.pointpillars.box_coder import apply_direction, decode
from attnlab.models.pointpillars.head import DetectionHead
from attnlab.models.pointpillars.pillar_net import PillarFeatureNet, scatter_to_bev
from attnlab.models.pointpillars.pillars import Pillars


def test_pillar_feature_net_is_linear_batchnorm_relu_max():
    torch.manual_seed(0)
    net = PillarFeatureNet(9, 8).double()
    x = torch.randn(5, 4, 9, dtype=torch.float64)
    out = net(x)
    h = x @ net.linear.weight.T  # (5, 4, 8)
    flat = h.reshape(-1, 8)
    mean, var = flat.mean(0), flat.var(0, unbiased=False)
    normed = (h - mean) / torch.sqrt(var + 1e-3) * net.norm.weight + net.norm.bias
    torch.testing.assert_close(out, normed.clamp(min=0).amax(1), rtol=0, atol=1e-12)


def test_scatter_puts_each_pillar_in_its_cell():
    feats = torch.arange(6.0).reshape(3, 2)
    pillars = Pillars(points=torch.zeros(3, 1, 4), num_points=torch.ones(3, dtype=torch.long),
                      coords=torch.tensor([[0, 1, 2], [1, 0, 0], [1, 2, 3]]), batch_size=2)  # fmt: skip
    image = scatter_to_bev(feats, pillars, (3, 4))
    expected = torch.zeros(2, 2, 3, 4)
    expected[0, :, 1, 2], expected[1, :, 0, 0], expected[1, :, 2, 3] = feats[0], feats[1], feats[2]
    assert torch.equal(image, expected)


def test_head_flattens_channels_in_anchor_order():
    torch.manual_seed(0)
    head = DetectionHead(4, anchors_per_location=6, num_classes=3)
    x = torch.randn(2, 4, 3, 5)
    cls, box, direction = head(x)
    raw = head.cls(x)  # (B, 6 * 3, H, W)
    b, iy, ix, a, k = 1, 2, 3, 4, 1
    assert cls[b, (iy * 5 + ix) * 6 + a, k] == raw[b, a * 3 + k, iy, ix]
    assert box.shape == (2, 3 * 5 * 6, 7) and direction.shape == (2, 90, 2)
    assert torch.allclose(torch.sigmoid(head.cls.bias), torch.tensor(0.01))


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = create_model("pointpillars-small", score_threshold=0.0)  # untrained scores are ~0.01
    return model.eval()


def test_detections_point_back_to_their_anchors_and_are_differentiable(small_model):
    clouds = small_model.example_inputs(batch_size=2)["clouds"]
    image = small_model.pseudo_image(clouds).detach().requires_grad_(True)
    out = small_model.forward_pseudo_image(image)
    det = out.detections[1]
    assert 0 < len(det.boxes) <= small_model.config.max_num
    idx, lab = det.anchor_index, det.labels
    torch.testing.assert_close(det.scores, torch.sigmoid(out.cls_logits[1, idx, lab]))
    decoded = decode(out.box_deltas[1, idx], small_model.anchors[idx])
    torch.testing.assert_close(det.boxes[:, :6], decoded[:, :6])
    heading = apply_direction(decoded[:, 6], out.dir_logits[1, idx].argmax(1))
    torch.testing.assert_close(det.boxes[:, 6], heading)
    assert (det.scores[:-1] >= det.scores[1:]).all()
    (grad,) = torch.autograd.grad(det.scores[0] + det.boxes[0].sum(), image)
    assert grad[1].abs().sum() > 0 and grad[0].abs().sum() == 0  # only its own scene


def test_training_mode_gives_no_detections_and_bad_clouds_fail(small_model):
    model = create_model("pointpillars-small")
    out = model(model.example_inputs(batch_size=1)["clouds"])
    assert out.detections is None and out.cls_logits.shape == (1, len(model.anchors), 3)
    with pytest.raises(InputError, match=r"cloud 0 must be \(N, 4\) points"):
        small_model([torch.zeros(10, 3)])


@pytest.mark.parametrize("layer_nums", [(1, 2, 1), (0, 0, 0)])
def test_input_span_is_the_support_of_an_output_rows_gradient(layer_nums):
    """With positive weights and no ReLU the network is a positive linear map, so the gradient of
    one output cell is non-zero exactly on the input cells it depends on: the span, cut to the input."""
    from attnlab.models.pointpillars.backbone import Backbone

    torch.manual_seed(0)
    net = Backbone(2, (2, 2, 2), layer_nums, (2, 2, 2), (1, 2, 4), (2, 2, 2)).double().eval()
    for m in net.modules():
        if isinstance(m, torch.nn.ReLU):
            m.forward = lambda x: x  # linear
        elif isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            m.weight.data = torch.rand_like(m.weight) + 0.1
    x = torch.ones(1, 2, 64, 64, dtype=torch.float64, requires_grad=True)
    out = net(x)  # (1, 6, 32, 32)
    for row in (0, 1, 5, 14, 31):
        (g,) = torch.autograd.grad(out[0, :, row, 16].sum(), x, retain_graph=True)
        rows = (g[0].abs().sum((0, 2)) > 0).nonzero().squeeze(1)
        lo, hi = net.input_span(row, row)
        assert (int(rows.min()), int(rows.max())) == (max(lo, 0), min(hi, 63))
        assert len(rows) == int(rows.max() - rows.min()) + 1
    assert net.total_stride == 8
    assert create_model("pointpillars-small").backbone.input_span(50, 50) == (
        63,
        129,
    )  # by hand: 8 * 12 -+ 33
