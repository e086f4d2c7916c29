"""Every explanation entry point refuses bad inputs and non-finite scores with one line naming them."""

import math

import pytest
import torch
from captum.attr import GuidedGradCam, LayerGradCam
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain import cam
from attnlab.explain.attention_maps import attention_relevance, attention_rollout
from attnlab.explain.cam import METHODS, class_activation_maps
from attnlab.explain.guided import guided_backprop, guided_grad_cam
from attnlab.explain.maps import explanation_maps
from attnlab.explain.metrics import deletion, insertion, road
from attnlab.explain.odam import guided_odam, odam
from attnlab.explain.scoring import evaluate_explanations
from attnlab.models.classifiers.vit import VisionTransformer, ViTConfig

from .test_odam import Detections, TinyDetector

# captum announces that it sets input gradients and ReLU hooks itself
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*(required_grads|backward hooks on ReLU).*:UserWarning"),
    pytest.mark.usefixtures("one_thread"),
]


class SmallCNN(nn.Module):
    """conv -> ReLU -> conv (target, 4x4) -> ReLU -> flatten -> linear, optionally in place."""

    def __init__(self, inplace: bool = False, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(inplace=inplace),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class GapCNN(nn.Module):
    """conv (target) -> ReLU -> global average pooling -> linear: the CAM architecture."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


class NaNWhereMarked(nn.Module):
    """``inner``'s scores, NaN for the examples whose pixel (0, 0, 0) is negative: finite inputs."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + torch.sqrt(x[:, 0, 0, 0].clamp(max=0))[:, None]  # sqrt(negative) = NaN


class NaNWhenPixelRemoved(nn.Module):
    """SmallCNN whose scores are NaN once pixel (0, 0) of channel 0 becomes exactly 0."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = SmallCNN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + 0 * torch.log(x[:, 0, 0, 0].abs())[:, None]  # 0 * -inf = NaN


def tiny_vit() -> VisionTransformer:
    return VisionTransformer(
        ViTConfig(image_size=8, patch_size=2, in_chans=3, num_classes=5, dim=8, depth=2, num_heads=2)
    )


def images(batch: int = 6) -> torch.Tensor:
    """Positive pixel (0, 0, 0), so that the NaN-marking models stay finite unless told otherwise."""
    x = torch.randn(batch, 3, 8, 8)
    x[:, 0, 0, 0] = 1.0
    return x


# every entry point, called on a (B, 3, 8, 8)-taking model with the given inputs
ENTRY_POINTS = {
    **{
        f"cam-{m}": (
            lambda x, m=m: class_activation_maps(
                GapCNN(False), x, "conv", method=m, linear="fc" if m == "cam" else None
            )
        )
        for m in METHODS
    },
    "guided_backprop": lambda x: guided_backprop(SmallCNN(), x),
    "guided_grad_cam": lambda x: guided_grad_cam(SmallCNN(), x, "features.2"),
    "odam": lambda x: odam(TinyDetector(), x, "backbone.2", 0),
    "guided_odam": lambda x: guided_odam(TinyDetector(), x, "backbone.2", 0),
    "deletion": lambda x: deletion(SmallCNN(), x, torch.rand(x.shape[0], *x.shape[2:]), steps=2),
    "insertion": lambda x: insertion(SmallCNN(), x, torch.rand(x.shape[0], *x.shape[2:]), steps=2),
    "road": lambda x: road(SmallCNN(), x, torch.rand(x.shape[0], *x.shape[2:]), fractions=(0.5,)),
    "attention_rollout": lambda x: attention_rollout(tiny_vit(), x),
    "attention_relevance": lambda x: attention_relevance(tiny_vit(), x),
    "explanation_maps": lambda x: explanation_maps(SmallCNN(), x, methods=("gradcam", "center")),
    "evaluate_explanations": lambda x: evaluate_explanations(
        SmallCNN(), [{"input": x}], methods=("center",), metrics=("deletion",), steps=2
    ),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_nan_and_inf_inputs_are_refused_naming_the_examples(name):
    x = images()
    x[1, 2, 3, 4] = math.nan
    x[4, 0, 5, 5] = math.inf
    with pytest.raises(InputError, match=r"^inputs contain NaN or inf in examples \[1, 4\] \(2 of 6\)$"):
        ENTRY_POINTS[name](x)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_unbatched_image_is_refused_before_the_model_runs(name, monkeypatch):
    calls = []
    monkeypatch.setattr(nn.Conv2d, "forward", lambda self, x: calls.append(x) or x)  # any call is recorded
    with pytest.raises(
        InputError, match=r"takes batched 4-D inputs \(B, C, H, W\).* got a 3-D tensor \(3, 8, 8\)"
    ):
        ENTRY_POINTS[name](torch.randn(3, 8, 8))
    assert calls == []


def test_integer_inputs_are_refused_where_pixels_are_needed():
    with pytest.raises(InputError, match=r"floating tensor, got torch\.int64"):
        guided_backprop(SmallCNN(), torch.ones(2, 3, 8, 8, dtype=torch.long))
    with pytest.raises(InputError, match=r"floating tensor or integer token ids, got torch\.bool"):
        class_activation_maps(SmallCNN(), torch.ones(2, 3, 8, 8, dtype=torch.bool), "features.2")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("normalize", [False, True])
def test_nan_scores_are_refused_naming_every_example_across_chunks(method, normalize, monkeypatch):
    monkeypatch.setattr(cam, "CPU_CHUNK", 4)
    x = images(7)  # chunks of 4 and 3 on CPU
    x[1, 0, 0, 0] = x[5, 0, 0, 0] = -1.0
    model, layer = (NaNWhereMarked(GapCNN(False)), "inner.conv")
    linear = "inner.fc" if method == "cam" else None
    expected = r"^the model's target scores are NaN or inf for examples \[1, 5\] \(2 of 7\)$"
    with pytest.raises(InputError, match=expected):  # never Grad-CAM++'s "overflows", nor zeroed maps
        class_activation_maps(model, x, layer, method=method, linear=linear, normalize=normalize)


@pytest.mark.parametrize("curve", [deletion, insertion])
def test_nan_scores_in_perturbation_metrics_are_refused_not_nan_aucs(curve):
    x = images(6)
    x[1, 0, 0, 0] = x[5, 0, 0, 0] = -1.0
    saliency = torch.rand(6, 8, 8)
    expected = r"unperturbed inputs are NaN or \+inf for examples \[1, 5\] \(2 of 6\)$"
    with pytest.raises(InputError, match=expected):
        curve(NaNWhereMarked(SmallCNN()), x, saliency, steps=2, batch_size=4)
    saliency[:, 0, 0] = 10.0  # pixel (0, 0) goes first: zeroed by deletion, kept zero by insertion
    with pytest.raises(
        InputError, match=r"perturbed inputs are NaN or \+inf for examples \[0, 1, 2, 3, 4, 5\]"
    ):
        curve(NaNWhenPixelRemoved(), images(6), saliency, steps=2, baseline="zeros")


def test_nan_scores_in_road_are_refused():
    x = images(3)
    x[2, 0, 0, 0] = -1.0
    with pytest.raises(
        InputError, match=r"unperturbed inputs are NaN or \+inf for examples \[2\] \(1 of 3\)"
    ):
        road(NaNWhereMarked(SmallCNN()), x, torch.rand(3, 8, 8), fractions=(0.5,))


def test_evaluate_names_examples_of_the_whole_stream():
    x = images(7)
    x[4, 0, 0, 0] = -1.0  # in the second chunk of 3
    batches = [{"input": x[:5]}, {"input": x[5:]}]
    with pytest.raises(
        InputError, match=r"scores are NaN or \+inf for examples \[4\] \(1 of examples 3 to 4\)$"
    ):
        evaluate_explanations(
            NaNWhereMarked(SmallCNN()), batches, methods=("center",), metrics=("deletion",), batch_size=3
        )
    x = images(7)
    x[6, 1, 2, 2] = math.nan
    with pytest.raises(
        InputError, match=r"^inputs contain NaN or inf in examples \[6\] \(1 of examples 6 to 6\)$"
    ):
        evaluate_explanations(
            SmallCNN(), [{"input": x}], methods=("center",), metrics=("deletion",), batch_size=3
        )


def test_nan_maps_of_a_custom_method_are_refused_naming_the_examples():
    def holes(_model, x, _targets):
        maps = torch.rand(x.shape[0], *x.shape[2:])
        maps[1, 0, 0] = math.nan
        return maps

    with pytest.raises(InputError, match=r"^holes maps are NaN or inf for examples \[1\] \(1 of 3\)$"):
        explanation_maps(SmallCNN(), images(3), methods=("holes",), custom={"holes": holes})


def test_nan_detector_scores_are_refused_by_odam():
    class NaNDetector(TinyDetector):
        def forward(self, x: torch.Tensor) -> Detections:
            out = super().forward(x)
            return Detections(out.scores + torch.sqrt(x[:, 0, 0, 0].clamp(max=0))[:, None, None], out.boxes)

    x = images(3)
    x[0, 0, 0, 0] = -1.0
    for explain in (odam, guided_odam):
        with pytest.raises(InputError, match=r"NaN or inf for images \[0\] \(1 of 3\)"):
            explain(NaNDetector(), x, "backbone.2", [0, 1])


# ---------------------------------------------------------------- targets


@pytest.mark.parametrize("method", METHODS)
def test_out_of_range_targets_of_every_chunk_are_listed(method, monkeypatch):
    monkeypatch.setattr(cam, "CPU_CHUNK", 4)  # 9 images: chunks of 4, 4 and 1
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 3, 0, -1])  # GapCNN has 3 classes
    linear = "fc" if method == "cam" else None
    expected = r"targets must lie in \[0, 3\), got \[3, -1\] for examples \[6, 8\] \(2 of 9\)$"
    with pytest.raises(InputError, match=expected):
        class_activation_maps(GapCNN(False), images(9), "conv", method=method, linear=linear, targets=targets)


def test_target_shape_and_dtype_are_checked_for_the_whole_batch():
    with pytest.raises(InputError, match=r"shape \(B=9,\), got \(8,\)"):
        class_activation_maps(SmallCNN(), images(9), "features.2", targets=list(range(8)))
    with pytest.raises(InputError, match="integer class indices"):
        class_activation_maps(SmallCNN(), images(9), "features.2", targets=torch.zeros(9))


# ---------------------------------------------------------------- one rule for in-place ReLUs


def test_every_method_sees_the_layer_output_before_an_inplace_relu_as_captum_does():
    torch.manual_seed(1)
    inplace = SmallCNN(inplace=True).double()
    plain = SmallCNN(inplace=False).double()
    plain.load_state_dict(inplace.state_dict())
    x = images(5).double()
    targets = torch.tensor([0, 3, 1, 4, 2])
    theirs = LayerGradCam(inplace, inplace.features[2]).attribute(x, target=targets, relu_attributions=True)
    ours = class_activation_maps(inplace, x, "features.2", targets=targets).maps
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs[:, 0], rtol=1e-10, atol=1e-12)
    for method in ("gradcam", "gradcam++", "hirescam", "layercam"):
        got = class_activation_maps(inplace, x, "features.2", method=method, targets=targets).maps
        expected = class_activation_maps(plain, x, "features.2", method=method, targets=targets).maps
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_cam_sees_the_layer_output_before_an_inplace_relu():
    torch.manual_seed(2)
    model = GapCNN(inplace=True).double()
    x = images(3).double()
    targets = torch.tensor([0, 2, 1])
    with torch.no_grad():
        acts = nn.functional.conv2d(x, model.conv.weight, model.conv.bias, padding=1)  # pre-ReLU (3, 4, 8, 8)
        expected = torch.einsum("bk,bkhw->bhw", model.fc.weight[targets], acts)
    assert (acts < 0).any()  # the ReLU would change the map
    got = class_activation_maps(model, x, "conv", method="cam", linear="fc", targets=targets).maps
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- guided Grad-CAM's upsampling


def test_guided_grad_cam_nearest_equals_captum_default():
    torch.manual_seed(4)
    model = SmallCNN().double()
    x = images(4).double()
    targets = torch.tensor([1, 1, 3, 0])
    ours = guided_grad_cam(model, x, "features.2", targets=targets, upsample_mode="nearest").maps
    theirs = GuidedGradCam(model, model.features[2]).attribute(x, target=targets)  # nearest by default
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    linear = guided_grad_cam(model, x, "features.2", targets=targets).maps
    assert not torch.allclose(linear, theirs, rtol=1e-2, atol=1e-6)  # the default is not captum's


def test_guided_grad_cam_upsample_mode_is_checked():
    with pytest.raises(ConfigError, match="unknown upsample mode 'bilinar'"):
        guided_grad_cam(SmallCNN(), images(2), "features.2", upsample_mode="bilinar")
