from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain.cam import class_activation_maps
from attnlab.explain.guided import guided_backprop
from attnlab.explain.odam import guided_odam, odam

CLASSES = 3


@dataclass
class Detections:
    scores: torch.Tensor  # (B, N, C)
    boxes: torch.Tensor  # (B, N, 4)


class TinyDetector(nn.Module):
    """Conv backbone and a 3x3 per-location head with 2 anchors per position: N = 2 h w."""

    def __init__(self, anchors: int = 2) -> None:
        super().__init__()
        self.anchors = anchors
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU()
        )
        self.head = nn.Conv2d(8, anchors * (CLASSES + 4), 3, padding=1)
        self.fail = False
        self.as_dict = False

    def forward(self, x: torch.Tensor) -> Detections | dict[str, torch.Tensor]:
        feats = self.backbone(x)
        if self.fail:
            raise RuntimeError("boom")
        out = self.head(feats)  # (B, A (C + 4), h, w)
        b, _, h, w = out.shape
        out = out.view(b, self.anchors, CLASSES + 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, CLASSES + 4)
        if self.as_dict:
            return {"scores": out[..., :CLASSES], "boxes": out[..., CLASSES:]}
        return Detections(out[..., :CLASSES], out[..., CLASSES:])


class LinearDetector(nn.Module):
    """Detections linear in the features of ``conv``: d out / d features is a row of ``head``."""

    def __init__(self, instances: int = 5) -> None:
        super().__init__()
        self.instances = instances
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Linear(4 * 6 * 6, instances * (CLASSES + 4))

    def forward(self, x: torch.Tensor) -> Detections:
        out = self.head(self.conv(x).flatten(1)).view(x.shape[0], self.instances, CLASSES + 4)
        return Detections(out[..., :CLASSES], out[..., CLASSES:])


def no_hooks(model: nn.Module) -> bool:
    hooked = any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in model.modules()
    )
    patched = any("forward" in vars(m) for m in model.modules() if isinstance(m, nn.ReLU))
    return not hooked and not patched


def hand_map(model: LinearDetector, feats: torch.Tensor, row: int) -> torch.Tensor:
    """ReLU(sum_k W_row,k * A_k): the elementwise gradient times features, by hand."""
    weight = model.head.weight[row].detach().view(feats.shape)  # (K, h, w)
    return F.relu((weight * feats).sum(0))


def test_odam_equals_hand_computed_gradient_times_features():
    model = LinearDetector().double()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    instances = torch.tensor([[0, 3], [4, 1]])
    classes = torch.tensor([[2, 0], [1, 1]])
    result = odam(model, x, "conv", instances, classes=classes)
    feats = model.conv(x).detach()  # (B, K, h, w)
    assert result.maps.shape == (2, 2, 6, 6) and result.box_maps is not None
    for b in range(2):
        for j in range(2):
            base = int(instances[b, j]) * (CLASSES + 4)
            expected_class = hand_map(model, feats[b], base + int(classes[b, j]))
            expected_boxes = torch.stack([hand_map(model, feats[b], base + CLASSES + k) for k in range(4)])
            torch.testing.assert_close(result.class_maps[b, j], expected_class)
            torch.testing.assert_close(result.box_maps[b, j], expected_boxes)
            merged = torch.maximum(expected_class, expected_boxes.amax(0))
            torch.testing.assert_close(result.maps[b, j], merged)
    scores = model(x).scores.detach()
    torch.testing.assert_close(result.scores, scores[torch.arange(2)[:, None], instances, classes])


def test_odam_is_not_grad_cam_and_instances_of_one_class_differ():
    model = LinearDetector().double()
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    result = odam(model, x, "conv", [0, 1], classes=torch.tensor([[2, 2]]), boxes=False)
    assert result.box_maps is None
    torch.testing.assert_close(result.maps, result.class_maps)
    assert not torch.allclose(result.class_maps[0, 0], result.class_maps[0, 1])
    # Grad-CAM averages the same gradients over positions
    cam = class_activation_maps(model, x, "conv", targets=2, score_fn=lambda out: out.scores[:, 0])
    assert not torch.allclose(cam.maps[0], result.class_maps[0, 0])


def test_default_classes_are_each_instances_best():
    model = TinyDetector()
    x = torch.randn(2, 3, 8, 8)
    result = odam(model, x, "backbone.3", 5)
    scores = model.eval()(x).scores.detach()
    assert result.instances.tolist() == [[5], [5]]
    assert torch.equal(result.classes, scores[:, 5].argmax(1)[:, None])


def test_batched_equals_per_image_and_chunking_changes_nothing():
    model = TinyDetector()
    x = torch.randn(3, 3, 8, 8)
    instances = torch.tensor([[0, 7, 20], [3, 3, 31], [12, 1, 9]])
    vmapped = odam(model, x, "backbone.3", instances, chunk=6)
    looped = odam(model, x, "backbone.3", instances, chunk=1)
    assert vmapped.maps.abs().sum() > 0
    torch.testing.assert_close(vmapped.maps, looped.maps)
    assert vmapped.box_maps is not None and looped.box_maps is not None
    torch.testing.assert_close(vmapped.box_maps, looped.box_maps)
    for b in range(3):
        alone = odam(model, x[b : b + 1], "backbone.3", instances[b : b + 1], chunk=4)
        torch.testing.assert_close(vmapped.maps[b : b + 1], alone.maps)
        assert torch.equal(vmapped.classes[b : b + 1], alone.classes)


def test_dict_outputs_upsampling_and_normalisation():
    model = TinyDetector()
    x = torch.randn(2, 3, 8, 8)
    plain = odam(model, x, "backbone.3", [2, 9])
    model.as_dict = True
    resized = odam(model, x, "backbone.3", [2, 9], upsample_to=(8, 8), normalize=True)
    assert resized.maps.shape == (2, 2, 8, 8)
    assert resized.box_maps is not None and resized.box_maps.shape == (2, 2, 4, 8, 8)
    assert float(resized.maps.amin()) >= 0 and float(resized.maps.amax()) <= 1
    upsampled = F.interpolate(plain.class_maps, size=(8, 8), mode="bilinear", align_corners=False)
    low = upsampled.flatten(2).amin(2)[..., None, None]
    span = upsampled.flatten(2).amax(2)[..., None, None] - low
    torch.testing.assert_close(resized.class_maps, (upsampled - low) / span)


@pytest.mark.parametrize("combine", ["squared_sum", "product"])
def test_guided_odam_combines_odam_with_guided_backprop(combine):
    model = TinyDetector()
    x = torch.randn(2, 3, 8, 8)
    result = guided_odam(model, x, "backbone.3", [4, 11], combine=combine)
    assert result.maps.shape == (2, 2, 3, 8, 8)
    base = odam(model, x, "backbone.3", [4, 11], upsample_to=(8, 8)).maps[:, :, None]  # (B, I, 1, H, W)
    for j, instance in enumerate((4, 11)):
        chosen = result.classes[:, j]
        guided = guided_backprop(
            model, x, targets=chosen, score_fn=lambda out, i=instance: out.scores[:, i]
        ).maps  # (B, C, H, W)
        expected = (base[:, j] + guided).square() if combine == "squared_sum" else base[:, j] * guided
        torch.testing.assert_close(result.maps[:, j], expected)
    assert no_hooks(model)


def test_hooks_and_relus_restored_after_errors():
    model = TinyDetector()
    x = torch.randn(1, 3, 8, 8)
    model.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        odam(model, x, "backbone.3", 0)
    with pytest.raises(RuntimeError, match="boom"):
        guided_odam(model, x, "backbone.3", 0)
    model.fail = False
    with pytest.raises(InputError, match="instances"):
        odam(model, x, "backbone.3", 999)
    assert no_hooks(model) and model.training
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_odam_rejects_bad_inputs():
    model = TinyDetector()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ConfigError, match="unknown module"):
        odam(model, x, "backbone.9", 0)
    with pytest.raises(InputError, match="classes"):
        odam(model, x, "backbone.3", [0, 1], classes=torch.tensor([[0], [1]]))
    with pytest.raises(InputError, match="classes"):
        odam(model, x, "backbone.3", 0, classes=CLASSES)
    with pytest.raises(InputError, match="instances"):
        odam(model, x, "backbone.3", [0.5])
    with pytest.raises(InputError, match="each of the 2 images"):
        odam(model, x, "backbone.3", torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(ConfigError, match="chunk"):
        odam(model, x, "backbone.3", 0, chunk=0)
    with pytest.raises(ConfigError, match="combine"):
        guided_odam(model, x, "backbone.3", 0, combine="sum")
    with pytest.raises(InputError, match="'scores'"):
        odam(nn.Sequential(nn.Conv2d(3, 4, 3)), x, "0", 0)
    assert no_hooks(model)
