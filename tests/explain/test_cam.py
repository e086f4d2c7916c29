from dataclasses import dataclass

import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain import cam
from attnlab.explain.cam import METHODS, class_activation_maps


class SmallCNN(nn.Module):
    """Non-linear head after the target layer, so Grad-CAM's gradients vary over space."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.fail:
            raise RuntimeError("boom")
        return self.head(h)


def gap_net(conv: nn.Module, channels: int, pool: nn.Module) -> nn.Sequential:
    """conv -> global average pooling -> linear: the architecture CAM was defined for."""
    return nn.Sequential(conv, pool, nn.Flatten(), nn.Linear(channels, 3)).double()


def assert_no_hooks(model: nn.Module) -> None:
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks and not module._backward_pre_hooks


def warmed_cnn() -> SmallCNN:
    model = SmallCNN()
    model.features[1].running_mean.uniform_(-0.5, 0.5)
    model.features[1].running_var.uniform_(0.5, 2.0)
    return model


def test_grad_cam_equals_captum_layer_grad_cam():
    model = warmed_cnn()
    x = torch.randn(4, 3, 8, 8)
    targets = torch.tensor([0, 3, 1, 4])
    ours = class_activation_maps(model, x, "features.3", targets=targets).maps
    model.eval()
    theirs = LayerGradCam(model, model.features[3]).attribute(x, target=targets, relu_attributions=True)
    assert ours.shape == (4, 4, 4)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs[:, 0], rtol=1e-5, atol=1e-6)


def test_gap_head_cam_gradcam_hirescam_layercam_by_hand():
    model = gap_net(nn.Conv2d(2, 4, 3), 4, nn.AdaptiveAvgPool2d(1))
    x = torch.randn(3, 2, 7, 6, dtype=torch.float64)
    targets = torch.tensor([0, 2, 1])
    conv, linear = model[0], model[3]
    acts = torch.nn.functional.conv2d(x, conv.weight, conv.bias)  # (3, 4, 5, 4)
    w = linear.weight[targets].detach()  # (3, 4)
    area = acts.shape[2] * acts.shape[3]
    cam = torch.einsum("bk,bkhw->bhw", w, acts).detach()
    maps = {
        m: class_activation_maps(
            model, x, "0", method=m, targets=targets, linear="3" if m == "cam" else None
        ).maps
        for m in METHODS
    }
    torch.testing.assert_close(maps["cam"], cam)
    torch.testing.assert_close(maps["gradcam"], cam.clamp(min=0) / area)  # Grad-CAM = ReLU(CAM) / area
    torch.testing.assert_close(maps["hirescam"], maps["gradcam"])  # Draelos & Carin: equal for GAP heads
    layer = torch.einsum("bk,bkhw->bhw", w.clamp(min=0) / area, acts).clamp(min=0)
    torch.testing.assert_close(maps["layercam"], layer.detach())


def test_gap_head_grad_cam_plus_plus_by_hand():
    model = gap_net(nn.Conv2d(2, 4, 3), 4, nn.AdaptiveAvgPool2d(1))
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    targets = torch.tensor([1, 0, 2])
    with torch.no_grad():
        acts = model[0](x)  # (3, 4, 4, 4)
        score = model(x).gather(1, targets[:, None])  # (3, 1)
        g = model[3].weight[targets] / 16  # constant gradient of a GAP head, (3, 4)
        total = acts.sum((2, 3))  # (3, 4)
        alpha = g**2 / (2 * g**2 + total * g**3)  # eq. 19 with the same g at every position
        weights = 16 * alpha * (score.exp() * g).clamp(min=0)
        expected = torch.einsum("bk,bkhw->bhw", weights, acts).clamp(min=0)
    got = class_activation_maps(model, x, "0", method="gradcam++", targets=targets).maps
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got, expected)


def test_flatten_head_hirescam_follows_each_position_but_gradcam_averages():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).double()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        acts = model[1](model[0](x))  # (2, 3, 4, 4)
        g = model[3].weight[1].view(3, 4, 4)  # the gradient of a linear head is its weight
        hires = (g * acts).sum(1).clamp(min=0)
        grad = (g.mean((1, 2))[:, None, None] * acts).sum(1).clamp(min=0)
    maps = {
        m: class_activation_maps(model, x, "1", method=m, targets=1).maps for m in ("hirescam", "gradcam")
    }
    torch.testing.assert_close(maps["hirescam"], hires)
    torch.testing.assert_close(maps["gradcam"], grad)
    assert not torch.allclose(maps["hirescam"], maps["gradcam"])


def test_video_gives_per_frame_maps():
    model = gap_net(nn.Conv3d(2, 4, (1, 3, 3)), 4, nn.AdaptiveAvgPool3d(1))
    x = torch.randn(2, 2, 3, 5, 5, dtype=torch.float64)
    cam = class_activation_maps(model, x, "0", method="cam", linear="3").maps
    grad = class_activation_maps(model, x, "0", targets=0)
    cam0 = class_activation_maps(model, x, "0", method="cam", linear="3", targets=0).maps
    assert cam.shape == cam0.shape == (2, 3, 3, 3)
    torch.testing.assert_close(grad.maps, cam0.clamp(min=0) / 27)
    frame = torch.nn.functional.conv2d(x[:, :, 1], model[0].weight[:, :, 0], model[0].bias)  # (2, 4, 3, 3)
    by_hand = torch.einsum("k,bkhw->bhw", model[3].weight[0], frame).detach()
    torch.testing.assert_close(cam0[:, 1], by_hand)
    up = class_activation_maps(model, x, "0", upsample_to=x.shape[2:], normalize=True).maps
    assert up.shape == (2, 3, 5, 5)


def test_signals_give_one_dimensional_maps():
    model = gap_net(nn.Conv1d(3, 4, 5), 4, nn.AdaptiveAvgPool1d(1))
    x = torch.randn(2, 3, 20, dtype=torch.float64)
    cam = class_activation_maps(model, x, "0", method="cam", linear="3", targets=2).maps
    grad = class_activation_maps(model, x, "0", targets=2).maps
    assert cam.shape == (2, 16)
    torch.testing.assert_close(grad, cam.clamp(min=0) / 16)
    assert class_activation_maps(model, x, "0", upsample_to=(20,)).maps.shape == (2, 20)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam"])
def test_batch_equals_each_example_and_model_state_is_restored(method: str):
    model = warmed_cnn().double().train()
    model.requires_grad_(False)
    model.features[0].weight.requires_grad_(True)
    running = model.features[1].running_mean.clone()
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    batch = class_activation_maps(model, x, "features.3", method=method)
    for i in range(3):
        one = class_activation_maps(model, x[i : i + 1], "features.3", method=method)
        assert one.targets.item() == batch.targets[i].item()
        torch.testing.assert_close(one.maps[0], batch.maps[i])
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [True] + [False] * (
        len(list(model.parameters())) - 1
    )
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(model.features[1].running_mean, running)  # eval mode: no statistics update
    assert_no_hooks(model)


@pytest.mark.parametrize(("chunk", "calls"), [(8, 1), (2, 3)])
def test_one_forward_and_one_backward_per_chunk(monkeypatch, chunk, calls):
    monkeypatch.setattr(cam, "CPU_CHUNK", chunk)
    counts = {"forward": 0, "backward": 0}

    class CountBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            counts["backward"] += 1
            return grad

    class Counted(SmallCNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            counts["forward"] += 1
            return CountBackward.apply(super().forward(x))

    class_activation_maps(Counted(), torch.randn(5, 3, 8, 8), "features.3", method="gradcam++")
    assert counts == {"forward": calls, "backward": calls}


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_chunks_give_the_maps_of_the_whole_batch(monkeypatch, method):
    torch.manual_seed(0)
    model, images = SmallCNN(), torch.randn(7, 3, 8, 8)
    targets = torch.tensor([0, 2, 1, 1, 0, 2, 1])
    monkeypatch.setattr(cam, "CPU_CHUNK", 64)
    whole = class_activation_maps(model, images, "features.3", method=method, targets=targets)
    monkeypatch.setattr(cam, "CPU_CHUNK", 3)  # chunks of 3, 3 and 1
    chunked = class_activation_maps(model, images, "features.3", method=method, targets=targets)
    for field in ("maps", "targets", "scores"):
        torch.testing.assert_close(getattr(chunked, field), getattr(whole, field))
    assert chunked.targets.tolist() == targets.tolist()
    with pytest.raises(InputError, match=r"shape \(B=7,\)"):
        class_activation_maps(model, images, "features.3", targets=targets[:6])
    with pytest.raises(InputError, match="no examples"):
        class_activation_maps(model, images[:0], "features.3")


def test_hooks_and_flags_are_restored_after_an_exception():
    model = SmallCNN().train()
    model.fail = True
    model.head.requires_grad_(False)
    with pytest.raises(RuntimeError, match="boom"):
        class_activation_maps(model, torch.randn(2, 3, 8, 8), "features.3")
    assert_no_hooks(model)
    assert all(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.head.parameters())


@dataclass
class Out:
    logits: torch.Tensor


class DataclassNet(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> Out:
        return Out(self.inner(x))


class DictNet(DataclassNet):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"logits": self.inner(x)}


def test_dataclass_output_and_score_fn():
    inner = SmallCNN()
    x = torch.randn(2, 3, 8, 8)
    plain = class_activation_maps(inner, x, "features.3")
    wrapped = class_activation_maps(DataclassNet(inner), x, "inner.features.3")
    torch.testing.assert_close(wrapped.maps, plain.maps)
    torch.testing.assert_close(wrapped.targets, plain.targets)
    doubled = class_activation_maps(
        DataclassNet(inner), x, "inner.features.3", targets=plain.targets, score_fn=lambda out: 2 * out.logits
    )
    torch.testing.assert_close(doubled.maps, 2 * plain.maps)  # Grad-CAM is linear in the score
    torch.testing.assert_close(doubled.scores, 2 * plain.scores)


def test_upsampling_and_normalisation():
    model = SmallCNN()
    x = torch.randn(3, 3, 8, 8)
    raw = class_activation_maps(model, x, "features.3", targets=1).maps
    same = class_activation_maps(model, x, "features.3", targets=1, upsample_to=(4, 4)).maps
    torch.testing.assert_close(same, raw)  # resizing to the same size changes nothing
    norm = class_activation_maps(model, x, "features.3", targets=1, upsample_to=(9, 13), normalize=True).maps
    assert norm.shape == (3, 9, 13)
    for i in range(3):
        if raw[i].max() > raw[i].min():
            assert norm[i].min() == 0 and torch.isclose(norm[i].max(), torch.tensor(1.0))
        else:
            assert (norm[i] == 0).all()


def test_errors():
    model = SmallCNN()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ConfigError, match=r"did you mean 'features\.3'"):
        class_activation_maps(model, x, "feature.3")
    with pytest.raises(ConfigError, match="unknown CAM method"):
        class_activation_maps(model, x, "features.3", method="gradcam+")
    with pytest.raises(InputError, match="CAM needs"):
        class_activation_maps(model, x, "head.1")  # (B, 5) is no feature map
    with pytest.raises(InputError, match="batched"):
        class_activation_maps(model, torch.randn(8), "features.3")
    with pytest.raises(InputError, match="upsample_to"):
        class_activation_maps(model, x, "features.3", upsample_to=(8,))
    with pytest.raises(InputError, match=r"targets must lie in \[0, 5\)"):
        class_activation_maps(model, x, "features.3", targets=[0, 5])
    with pytest.raises(InputError, match="shape"):
        class_activation_maps(model, x, "features.3", targets=[0, 1, 2])
    with pytest.raises(ConfigError, match="needs linear"):
        class_activation_maps(model, x, "features.3", method="cam")
    with pytest.raises(ConfigError, match="method='cam' only"):
        class_activation_maps(model, x, "features.3", linear="head.1")
    with pytest.raises(ConfigError, match="in_features"):
        class_activation_maps(model, x, "features.3", method="cam", linear="head.1")
    with pytest.raises(InputError, match="score_fn must return"):
        class_activation_maps(DataclassNet(model), x, "inner.features.3", score_fn=lambda out: out)
    with pytest.raises(InputError, match="no 'logits' tensor: pass score_fn"):
        class_activation_maps(DictNet(model), x, "inner.features.3")
    with pytest.raises(InputError, match=r"scores must be \(B=2"):
        class_activation_maps(model, x, "features.3", score_fn=lambda out: out.sum(1))
    assert_no_hooks(model)


def test_grad_cam_plus_plus_reports_exp_overflow():
    model = SmallCNN()
    nn.init.constant_(model.head[1].bias, 500.0)
    with pytest.raises(InputError, match="exp"):
        class_activation_maps(model, torch.randn(1, 3, 8, 8), "features.3", method="gradcam++")
