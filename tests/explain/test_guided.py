import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop, GuidedGradCam
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain.cam import class_activation_maps
from attnlab.explain.guided import guided_backprop, guided_grad_cam, guided_relus

# captum announces that it sets input gradients and ReLU hooks itself
pytestmark = pytest.mark.filterwarnings("ignore:.*(required_grads|backward hooks on ReLU).*:UserWarning")


class SmallCNN(nn.Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(inplace=inplace),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
        self.fail = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        if self.fail:
            raise RuntimeError("boom")
        return self.head(h)


def relus_restored(model: nn.Module) -> bool:
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = any(m._forward_hooks or m._backward_hooks or m._forward_pre_hooks for m in model.modules())
    return bool(relus) and not hooks and all("forward" not in vars(m) for m in relus)


def test_guided_backprop_equals_captum():
    model = SmallCNN()
    x = torch.randn(4, 3, 8, 8)
    targets = torch.tensor([2, 0, 4, 1])
    ours = guided_backprop(model, x, targets=targets).maps
    theirs = GuidedBackprop(model).attribute(x, target=targets)
    assert ours.shape == x.shape and ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_guided_grad_cam_equals_captum_with_bilinear_upsampling():
    model = SmallCNN()
    x = torch.randn(4, 3, 8, 8)
    targets = torch.tensor([1, 1, 3, 0])
    ours = guided_grad_cam(model, x, "features.3", targets=targets).maps
    theirs = GuidedGradCam(model, model.features[3]).attribute(x, target=targets, interpolate_mode="bilinear")
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_guided_backprop_by_hand_on_a_two_layer_mlp():
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3)).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    with torch.no_grad():
        active = model[0](x) > 0  # (4, 7)
        signal = model[2].weight[2].clamp(min=0) * active  # only positive gradients through active units
        expected = signal @ model[0].weight  # (4, 5)
        plain = (model[2].weight[2] * active) @ model[0].weight
    got = guided_backprop(model, x, targets=2).maps
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, plain)  # guidance changed something
    assert relus_restored(model)


def test_in_place_relus_batches_and_restoration():
    model, inplace = SmallCNN(), SmallCNN(inplace=True)
    inplace.load_state_dict(model.state_dict())
    x = torch.randn(3, 3, 8, 8)
    batch = guided_backprop(inplace, x)
    torch.testing.assert_close(batch.maps, guided_backprop(model, x).maps)
    for i in range(3):
        torch.testing.assert_close(guided_backprop(model, x[i : i + 1]).maps[0], batch.maps[i])
    assert relus_restored(model) and relus_restored(inplace)
    leaf = x.clone().requires_grad_(True)
    model(leaf)[:, 0].sum().backward()  # the ordinary ReLU gradient is back: negative values pass
    assert (leaf.grad < 0).any()


def test_guided_grad_cam_is_guided_backprop_times_upsampled_grad_cam():
    model = SmallCNN()
    x = torch.randn(2, 3, 8, 8)
    cam = class_activation_maps(model, x, "features.1", targets=3, upsample_to=(8, 8)).maps
    guided = guided_backprop(model, x, targets=3).maps
    torch.testing.assert_close(guided_grad_cam(model, x, "features.1", targets=3).maps, guided * cam[:, None])


def test_everything_restored_after_an_exception():
    model = SmallCNN().train()
    model.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        guided_backprop(model, torch.randn(2, 3, 8, 8))
    with pytest.raises(RuntimeError, match="boom"):
        guided_grad_cam(model, torch.randn(2, 3, 8, 8), "features.3")
    assert relus_restored(model)
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="inside"), guided_relus(model):
        raise ValueError("inside")
    assert relus_restored(model)


def test_errors():
    class FunctionalRelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(F.relu(x))

    with pytest.raises(ConfigError, match=r"no nn\.ReLU modules"):
        guided_backprop(FunctionalRelu(), torch.randn(2, 4))
    model = SmallCNN()
    with pytest.raises(InputError, match="floating"):
        guided_backprop(model, torch.ones(2, 3, 8, 8, dtype=torch.long))
    with pytest.raises(InputError, match="batched"):
        guided_backprop(model, torch.randn(3))
    with pytest.raises(InputError, match=r"\(B, C, H, W\)"):
        guided_grad_cam(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), torch.randn(2, 4), "0")
    with pytest.raises(ConfigError, match=r"did you mean 'features\.3'"):
        guided_grad_cam(model, torch.randn(2, 3, 8, 8), "feature.3")
    with guided_relus(model), pytest.raises(ConfigError, match="already guided"), guided_relus(model):
        pass
    assert relus_restored(model)
