"""Explanations of PointPillars boxes per point, against independent computations (float64)."""

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.odam import InstanceExplanation, guided_gradients
from attnlab.explain.point_render import attention_colours, plot_bev_attention, write_ply
from attnlab.explain.points import (
    DetectorScores,
    box_share,
    deletion_scores,
    explain_boxes,
    mapb,
    point_values,
)
from attnlab.models import create_model
from attnlab.models.pointpillars.box_coder import apply_direction, decode
from attnlab.models.pointpillars.pillars import PillarConfig, point_cells

TINY = dict(
    voxel_size=(0.5, 0.5, 4.0),
    point_range=(0.0, -4.0, -3.0, 8.0, 4.0, 1.0),  # a 16 x 16 pillar grid
    max_pillars=200,
    pillar_dim=4,
    channels=(4, 4, 4),
    layer_nums=(1, 1, 1),
    up_channels=(4, 4, 4),
    nms_pre=20,
    score_threshold=0.0,
    max_num=3,
)


def tiny_detector():
    torch.manual_seed(0)
    model = create_model("pointpillars-small", **TINY).double().eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # batch norms that do something, so a wrong order of ops shows
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen, dtype=torch.float64))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen, dtype=torch.float64))
            m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=gen, dtype=torch.float64))
            m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=gen, dtype=torch.float64))
    for conv in (model.head.cls, model.head.box, model.head.dir):
        nn.init.normal_(conv.weight, std=0.5, generator=gen)  # scores that depend on the features
    return model


def tiny_cloud(n=400, seed=2):
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([-0.5, -4.5, -3.2])  # some points outside the range on every side
    hi = torch.tensor([8.5, 4.5, 1.2])
    xyz = lo + (hi - lo) * torch.rand(n, 3, generator=gen, dtype=torch.float64)
    return torch.cat([xyz, torch.rand(n, 1, generator=gen, dtype=torch.float64)], 1)


@pytest.fixture(scope="module")
def scene():
    model, cloud = tiny_detector(), tiny_cloud()
    with torch.no_grad():
        det = model([cloud]).detections[0]
    assert len(det.labels) == 3
    return model, cloud, det


def loop_cells(cloud, cfg):
    """Each point's pillar cell iy * nx + ix by a Python loop, -1 outside."""
    ny, nx = cfg.grid_size
    x0, y0, z0, x1, y1, z1 = cfg.point_range
    out = []
    for x, y, z in cloud[:, :3].tolist():
        if not (x0 <= x < x1 and y0 <= y < y1 and z0 <= z < z1):
            out.append(-1)
            continue
        ix, iy = math.floor((x - x0) / cfg.voxel_size[0]), math.floor((y - y0) / cfg.voxel_size[1])
        out.append(iy * nx + ix if ix < nx and iy < ny else -1)
    return out


def test_point_cells_equal_a_python_loop():
    cfg = PillarConfig(voxel_size=(0.5, 0.5, 4.0), point_range=(0.0, -4.0, -3.0, 8.0, 4.0, 1.0))
    cloud = tiny_cloud(2000, seed=5)
    cloud[:4, :3] = torch.tensor([[0.0, -4.0, -3.0], [8.0, 0.0, 0.0], [7.999, 3.999, 0.999], [0.5, 0.5, 1.0]])
    cells = point_cells(cloud, cfg)
    assert cells.tolist() == loop_cells(cloud, cfg)
    assert cells[:4].tolist() == [0, -1, 15 * 16 + 15, -1]
    assert (cells == -1).any() and (cells >= 0).sum() > 1000


def test_point_values_give_each_point_its_cell_and_zero_outside():
    maps = torch.arange(2 * 4 * 6, dtype=torch.float64).view(2, 4, 6)  # 2 boxes on a (4, 6) grid
    cells = torch.tensor([0, 5, 6, 23, -1])
    want = [[0, 5, 6, 23, 0], [24, 29, 30, 47, 0]]
    assert point_values(maps, cells, (4, 6)).tolist() == want
    coarse = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])  # (1, 2, 3): stride 2 over (4, 6)
    # cells (0,0) (0,5) (1,0) (3,5) -> coarse (0,0) (0,2) (0,0) (1,2)
    assert point_values(coarse, torch.tensor([0, 5, 6, 23]), (4, 6)).tolist() == [[1, 3, 1, 6]]
    with pytest.raises(InputError, match="does not tile"):
        point_values(torch.zeros(1, 3, 3), cells, (4, 6))


def hand_outputs(model, image):
    """Per-anchor sigmoid scores (A, K) and the 7 decoded box values (A, 7), written out."""
    cls, deltas, dirs = model.head(model.backbone(image))
    boxes = decode(deltas[0], model.anchors)
    heading = apply_direction(boxes[:, 6], dirs[0].argmax(1))
    return torch.sigmoid(cls[0]), torch.cat([boxes[:, :6], heading[:, None]], 1)


def unit_range(m):
    return (m - m.min()) / (m.max() - m.min())


def test_odam_per_point_equals_autograd_by_hand(scene):
    model, cloud, det = scene
    got = explain_boxes(model, cloud, det, methods=("odam",)).maps["odam"]
    cells = loop_cells(cloud, model.config.pillars)
    nx = model.config.pillars.grid_size[1]
    for i, (a, c) in enumerate(zip(det.anchor_index.tolist(), det.labels.tolist(), strict=True)):
        image = model.pseudo_image([cloud]).detach().requires_grad_(True)
        scores, boxes = hand_outputs(model, image)
        maps = []
        for y in [scores[a, c], *boxes[a]]:
            (g,) = torch.autograd.grad(y, image, retain_graph=True)
            maps.append(unit_range(torch.relu((g * image).sum(1))[0]))  # (ny, nx)
        merged = torch.stack(maps).amax(0).detach()
        want = [0.0 if k < 0 else float(merged[k // nx, k % nx]) for k in cells]
        torch.testing.assert_close(got[i], torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-10)
    assert got.max() > 0.9 and (got == 0).any()


class HookGuidedReLU(nn.Module):
    """Guided ReLU by a tensor hook: negative gradients arriving at the output are cut, and
    ReLU's own backward cuts where the input was negative."""

    def forward(self, x):
        y = torch.relu(x)
        if y.requires_grad:
            y.register_hook(lambda g: g.clamp(min=0))
        return y


def manual_guided(model, cloud, anchor, cls):
    guided = copy.deepcopy(model)
    for module in list(guided.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, child_name, HookGuidedReLU())
    leaf = cloud.clone().requires_grad_(True)
    scores, _ = hand_outputs(guided, guided.pseudo_image([leaf]))
    (g,) = torch.autograd.grad(scores[anchor, cls], leaf)
    return g  # (N, 4)


def test_guided_backprop_to_points_equals_a_manual_guided_relu_backward(scene):
    model, cloud, det = scene
    explained = InstanceExplanation(
        maps=torch.zeros(1), class_maps=torch.zeros(1), box_maps=None,
        instances=det.anchor_index[None], classes=det.labels[None], scores=det.scores[None],
    )  # fmt: skip
    got = guided_gradients(DetectorScores(model, from_points=True), cloud[None], explained)[0]  # (I, N, 4)
    for i, (a, c) in enumerate(zip(det.anchor_index.tolist(), det.labels.tolist(), strict=True)):
        want = manual_guided(model, cloud, a, c)
        torch.testing.assert_close(got[i], want, rtol=1e-9, atol=1e-12)
    assert got.abs().sum() > 0
    # Guided Grad-CAM and Guided ODAM are built of these gradients as documented
    maps = explain_boxes(model, cloud, det, methods=("odam", "guided-odam", "guided-gradcam"))
    norms = got.norm(dim=-1)
    g_input = norms / norms.amax(1, keepdim=True)
    torch.testing.assert_close(maps.maps["guided-odam"], (maps.maps["odam"] + g_input).square())
    cells = point_cells(cloud, model.config.pillars)
    cam = point_values(maps.grid_maps["gradcam"], cells, model.config.pillars.grid_size)
    torch.testing.assert_close(maps.maps["guided-gradcam"], cam * g_input)


def test_gradcam_weights_are_channel_means_of_the_gradient(scene):
    model, cloud, det = scene
    maps = explain_boxes(model, cloud, det, methods=("guided-gradcam",)).grid_maps["gradcam"]
    a, c = int(det.anchor_index[0]), int(det.labels[0])
    image = model.pseudo_image([cloud]).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(hand_outputs(model, image)[0][a, c], image)
    want = torch.relu((g.mean((2, 3), keepdim=True) * image).sum(1))[0]
    torch.testing.assert_close(maps[0], unit_range(want), rtol=0, atol=1e-10)


def test_mapb_on_hand_placed_points_and_box():
    box = np.array([[2.0, 1.0, -1.0, 2.0, 4.0, 1.5, math.pi / 2]])  # x y z w l h ry, z the bottom
    # turned a quarter: w (2 m) now along y, l (4 m) along x
    points = torch.tensor(
        [[3.5, 1.5, -0.5, 0], [0.5, 0.2, 0.0, 0], [2.0, 1.0, 0.4, 0],  # inside
         [2.0, 2.5, -0.5, 0], [2.0, 1.0, 0.6, 0], [4.5, 1.0, -0.5, 0]],  # beside, above, ahead
        dtype=torch.float64,
    )  # fmt: skip
    from attnlab.data.kitti import points_in_boxes

    inside = torch.from_numpy(points_in_boxes(points.numpy(), box)).T  # (1, 6)
    assert inside.tolist() == [[True, True, True, False, False, False]]
    attention = torch.tensor([[1.0, 2.0, 3.0, 4.0, 0.0, 0.0]], dtype=torch.float64)
    share = box_share(attention, inside)
    assert share.tolist() == [0.6]
    shares = torch.tensor([0.6, 0.2, 1.0, 0.0, 0.5], dtype=torch.float64)
    labels = torch.tensor([0, 0, 2, 2, 2])
    table = mapb(shares, labels, ("Car", "Pedestrian", "Cyclist"))
    assert table["Car"] == pytest.approx(40.0) and table["Cyclist"] == pytest.approx(50.0)
    assert math.isnan(table["Pedestrian"]) and table["n/Pedestrian"] == 0 and table["n/Cyclist"] == 3
    assert box_share(torch.zeros(1, 6, dtype=torch.float64), inside).tolist() == [0.0]
    with pytest.raises(InputError, match="non-negative"):
        box_share(-attention, inside)


def test_uniform_floor_is_the_in_box_point_fraction_and_random_is_near_it(scene):
    model, cloud, det = scene
    ex = explain_boxes(
        model, cloud, det, methods=("uniform", "random"), generator=torch.Generator().manual_seed(0)
    )
    for i, box in enumerate(det.boxes.tolist()):
        x, y, z, width, length, h, ry = box
        count = 0
        for px, py, pz, _ in cloud.tolist():
            dx, dy = px - x, py - y
            u = dx * math.cos(ry) - dy * math.sin(ry)
            v = dx * math.sin(ry) + dy * math.cos(ry)
            count += abs(u) <= width / 2 and abs(v) <= length / 2 and z <= pz <= z + h
        share = box_share(ex.maps["uniform"][i : i + 1], ex.inside[i : i + 1])
        assert float(share) == pytest.approx(count / len(cloud))
    assert ex.maps["random"].min() >= 0 and ex.maps["random"].max() <= 1


def test_bad_input_is_one_line(scene):
    model, cloud, det = scene
    with pytest.raises(InputError, match=r"\(N > 0, 4\)"):
        explain_boxes(model, cloud[:, :3], det)
    with pytest.raises(Exception, match="unknown point explanation method 'gradcam'"):
        explain_boxes(model, cloud, det, methods=("gradcam",))


def test_colours_run_blue_to_red_and_ply_reads_back(tmp_path: Path, scene):
    _model, cloud, _det = scene
    values = torch.linspace(0, 2, len(cloud), dtype=torch.float64)
    rgb = attention_colours(values)
    assert rgb[0, 2] > 100 and rgb[0, 0] == 0 and rgb[-1, 0] > 100 and rgb[-1, 2] == 0
    from plyfile import PlyData

    path = write_ply(tmp_path / "scene.ply", cloud, values)
    vertex = PlyData.read(str(path))["vertex"]
    np.testing.assert_allclose(vertex["x"], cloud[:, 0].float().numpy())
    np.testing.assert_allclose(vertex["attention"], values.float().numpy())
    assert (vertex["red"] == rgb[:, 0]).all() and (vertex["blue"] == rgb[:, 2]).all()
    picture = plot_bev_attention(
        [cloud], {"a": [values], "b": [values.flip(0)]}, [_det.boxes[0]], tmp_path / "bev.png"
    )
    assert picture.stat().st_size > 1000


def test_deletion_removes_the_top_points_and_rescoring_by_hand(scene):
    model, cloud, det = scene
    ex = explain_boxes(model, cloud, det, methods=("odam", "uniform"))
    ranks = torch.arange(len(cloud), dtype=torch.float64).flip(0)  # point 0 the most attended
    maps = {"first": ranks.expand(len(det.labels), -1), "odam": ex.maps["odam"]}
    got = deletion_scores(model, cloud, det, maps, ex.inside, generator=torch.Generator().manual_seed(0))
    assert set(got) == {"first", "odam", "random", "box"}
    for i, (a, c) in enumerate(zip(det.anchor_index.tolist(), det.labels.tolist(), strict=True)):
        k = int(ex.inside[i].sum())

        def score(points, a=a, c=c):
            with torch.no_grad():
                return float(hand_outputs(model, model.pseudo_image([points]))[0][a, c])

        before = score(cloud)
        assert float(got["first"][i]) == pytest.approx(score(cloud[k:]) / before, rel=1e-9)
        assert float(got["box"][i]) == pytest.approx(score(cloud[~ex.inside[i]]) / before, rel=1e-9)
