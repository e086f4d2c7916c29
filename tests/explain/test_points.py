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
from attnlab.explain.point_render import (
    Camera,
    attention_colours,
    chase_camera,
    plot_bev_attention,
    plot_perspective_attention,
    render_points,
    write_ply,
)
from attnlab.explain.points import (
    DetectorScores,
    box_share,
    box_windows,
    deletion_scores,
    explain_boxes,
    mapb,
    point_values,
)
from attnlab.models import create_model
from attnlab.models.outputs import Detections3D
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


WIDE = TINY | dict(
    voxel_size=(0.25, 0.25, 4.0),
    point_range=(0.0, -12.0, -3.0, 24.0, 12.0, 1.0),  # 96 x 96 pillars: windows of 48 x 48
    max_pillars=4000,
    nms_pre=60,
    max_num=8,
)


def tiny_detector(config=TINY):
    torch.manual_seed(0)
    model = create_model("pointpillars-small", **config).double().eval()
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


def tiny_cloud(n=400, seed=2, lo=(-0.5, -4.5, -3.2), hi=(8.5, 4.5, 1.2)):
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(lo), torch.tensor(hi)  # some points outside the range on every side
    xyz = lo + (hi - lo) * torch.rand(n, 3, generator=gen, dtype=torch.float64)
    return torch.cat([xyz, torch.rand(n, 1, generator=gen, dtype=torch.float64)], 1)


@pytest.fixture(scope="module")
def scene():
    model, cloud = tiny_detector(), tiny_cloud()
    with torch.no_grad():
        det = model([cloud]).detections[0]
    assert len(det.labels) == 3
    return model, cloud, det


@pytest.fixture(scope="module")
def wide_scene():
    model = tiny_detector(WIDE)
    cloud = tiny_cloud(6000, seed=3, lo=(-0.5, -12.5, -3.2), hi=(24.5, 12.5, 1.2))
    with torch.no_grad():
        det = model([cloud]).detections[0]
        out = DetectorScores(model)(model.pseudo_image([cloud]))
    assert len(det.labels) == 8
    # the detections lie near the grid's edges: add anchors in the middle of the (48, 48) head grid
    anchors = torch.tensor([(24 * 48 + 24) * 6 + 0, (12 * 48 + 30) * 6 + 3, (40 * 48 + 7) * 6 + 5])
    labels = model.anchor_class[anchors]
    more = Detections3D(out["boxes"][0, anchors], out["scores"][0, anchors, labels], labels, anchors)
    joined = [
        torch.cat([getattr(det, f), getattr(more, f)]) for f in ("boxes", "scores", "labels", "anchor_index")
    ]
    return model, cloud, Detections3D(*joined)


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


def test_windows_give_the_whole_images_maps_exactly(wide_scene):
    model, cloud, det = wide_scene
    windows = box_windows(model, det.anchor_index)
    assert windows.size == (48, 48) and windows.grid == (96, 96)
    starts = {y for y, _ in windows.origins} | {x for _, x in windows.origins}
    assert starts - {0, 48}, "some window must have both sides inside the image"
    # each box's head outputs on its window equal the whole image's at its anchor
    image = model.pseudo_image([cloud])
    cls, deltas, _ = model.head(model.backbone(windows.crop(image)))
    whole_cls, whole_deltas, _ = model.head(model.backbone(image))
    rows = torch.arange(len(det.labels))
    torch.testing.assert_close(cls[rows, windows.local], whole_cls[0, det.anchor_index], rtol=0, atol=1e-12)
    torch.testing.assert_close(
        deltas[rows, windows.local], whole_deltas[0, det.anchor_index], rtol=0, atol=1e-12
    )
    methods = ("odam", "odam-class", "guided-gradcam", "guided-odam")
    got = explain_boxes(model, cloud, det, methods=methods, per_pass=3)
    want = explain_boxes(model, cloud, det, methods=methods, batched=False)
    for name in ("odam", "odam-class", "gradcam"):
        torch.testing.assert_close(got.grid_maps[name], want.grid_maps[name], rtol=0, atol=1e-10)
    for name in methods:
        torch.testing.assert_close(got.maps[name], want.maps[name], rtol=0, atol=1e-10)
        assert want.maps[name].amax(1).gt(0).sum() >= (1 if name == "guided-gradcam" else 11)  # not vacuous
    assert want.grid_maps["gradcam"].amax((1, 2)).eq(1).sum() >= 6  # Grad-CAM is sparse in this net
    assert (got.grid_maps["odam"] == 0).float().mean() > 0.3  # zero outside each box's window


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


def test_camera_projects_like_a_pinhole_written_out():
    camera = Camera(eye=(0.0, 0.0, 2.0), target=(10.0, 0.0, 2.0), fov=90.0, width=400, height=300)
    # looking along +x with z up: right is -y, down is -z; focal = 200 px for 90 degrees over 400 px
    points = np.array(
        [[5.0, 0.0, 2.0], [5.0, -1.0, 2.0], [4.0, 0.0, 3.0], [-1.0, 0.0, 2.0], [10.0, 2.0, 0.0]]
    )
    uv, depth = camera.project(points)
    np.testing.assert_allclose(depth, [5, 5, 4, -1, 10])
    np.testing.assert_allclose(uv[:3], [[200, 150], [200 + 200 / 5, 150], [200, 150 - 200 / 4]])
    np.testing.assert_allclose(uv[4], [200 - 200 * 2 / 10, 150 + 200 * 2 / 10])
    with pytest.raises(InputError, match="along up"):
        Camera(eye=(0.0, 0.0, 5.0), target=(0.0, 0.0, 0.0)).rotation()


def test_render_points_paints_each_point_at_its_pixel_nearest_on_top():
    camera = Camera(eye=(0.0, 0.0, 0.0), target=(1.0, 0.0, 0.0), fov=90.0, width=40, height=30)
    # focal 20 px: (10, 0, 0) -> pixel (20, 15); (5, -0.5, 0) -> (22, 15); (-1, 0, 0) is behind
    points = np.array([[10.0, 0.0, 0.0], [20.0, 0.0, 0.0], [5.0, -0.5, 0.0], [-1.0, 0.0, 0.0]])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], dtype=np.uint8)
    image = render_points(points, colours, camera, dot=2, background=0)
    assert image.shape == (30, 40, 3)
    assert image[15, 20].tolist() == [255, 0, 0]  # the red point hides the green one behind it
    assert image[16, 21].tolist() == [255, 0, 0] and image[15, 22].tolist() == [0, 0, 255]
    lit = {tuple(c) for c in image.reshape(-1, 3).tolist()} - {(0, 0, 0)}
    assert lit == {(255, 0, 0), (0, 0, 255)}  # nothing green shows, nothing from behind the camera
    assert (image.any(-1)).sum() == 8  # two 2 x 2 dots
    with pytest.raises(InputError, match="colours"):
        render_points(points, colours[:2], camera)


def test_chase_camera_looks_at_the_box_from_the_sensors_side(tmp_path: Path, scene):
    box = torch.tensor([10.0, 10.0, -1.5, 1.6, 3.9, 1.5, 0.3], dtype=torch.float64)
    camera = chase_camera(box, back=6.0, above=3.0)
    centre = np.array([[10.0, 10.0, -0.75]])
    uv, depth = camera.project(centre)
    np.testing.assert_allclose(uv[0], [camera.width / 2, camera.height / 2], atol=1e-9)
    eye = np.array(camera.eye)
    assert np.isclose(np.hypot(*eye[:2]), np.hypot(10, 10) - 6) and np.isclose(eye[2], -0.75 + 3)
    near, far = camera.project(np.array([[9.0, 9.0, -0.75], [11.0, 11.0, -0.75]]))[1]
    assert near < depth[0] < far  # the side towards the sensor is nearer the camera
    _model, cloud, det = scene
    values = torch.linspace(0, 1, len(cloud), dtype=torch.float64)
    picture = plot_perspective_attention(
        [cloud], {"a": [values], "b": [values.flip(0)]}, [det.boxes[0]], tmp_path / "view.png", titles=["box"]
    )
    assert picture.stat().st_size > 1000
    with pytest.raises(InputError, match="2 cameras for 1 boxes"):
        plot_perspective_attention(
            [cloud], {"a": [values]}, [det.boxes[0]], tmp_path / "x.png", cameras=[camera] * 2
        )


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
