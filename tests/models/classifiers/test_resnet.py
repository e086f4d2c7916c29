"""ResNet backbones and the ResNet-ABN: published sizes, shapes, the attention override, validation."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError
from attnlab.layers.residual import ResNetConfig, ZeroPadShortcut
from attnlab.models import create_model
from attnlab.models.abn.resnet_abn import ABNConfig, AttentionBranchNetwork
from attnlab.models.classifiers.resnet import ResNet

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def he_cifar_params(depth: int, num_classes: int = 10) -> int:
    """He et al.'s CIFAR ResNet counted by hand: 3x3 convs without bias, BN (scale, shift) after
    each, option-A shortcuts (no parameters), a linear head on 64 channels."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # stem
    in_chs = 16
    for width in (16, 32, 64):
        first = in_chs * width * 9 + width * width * 9 + 4 * width
        total += first + (n - 1) * (2 * width * width * 9 + 4 * width)
        in_chs = width
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize(
    ("name", "depth", "published_millions", "digits"),
    [("resnet20-cifar", 20, 0.27, 2), ("resnet56-cifar", 56, 0.85, 2), ("resnet110-cifar", 110, 1.7, 1)],
)
def test_cifar_resnets_have_he_et_al_sizes(name: str, depth: int, published_millions: float, digits: int):
    expected = he_cifar_params(depth)
    assert round(expected / 1e6, digits) == published_millions  # the formula is the paper's model
    assert n_params(create_model(name)) == expected


@pytest.mark.parametrize(
    ("name", "published"), [("resnet18", 11_689_512), ("resnet50", 25_557_032), ("resnet101", 44_549_160)]
)
def test_imagenet_resnets_have_torchvision_sizes(name: str, published: int):
    assert n_params(create_model(name)) == published


@pytest.mark.parametrize(
    "name", ["abn-resnet20-cifar", "abn-resnet56-cifar", "abn-resnet18", "abn-resnet50", "abn-resnet101"]
)
def test_abn_adds_a_copy_of_the_last_stage_and_the_head(name: str):
    """ABN = its backbone + a second last stage (same shapes at stride 1) + the head's
    BN(C), 1x1 C->K, BN(K), 1x1 K->K, 3x3 K->1, BN(1)."""
    abn = create_model(name)
    c = abn.config
    backbone = ResNet(
        ResNetConfig(
            style=c.style, depth=c.depth, block=c.block, shortcut=c.shortcut, num_classes=c.num_classes
        )
    )
    last_stage = n_params(backbone.stages[-1])
    channels, k = backbone.fc.in_features, c.num_classes
    head = 2 * channels + channels * k + 2 * k + k * k + k * 9 + 2
    assert n_params(abn) == n_params(backbone) + last_stage + head


def test_official_cifar_layout_switches_to_bottlenecks_at_44():
    assert create_model("abn-resnet20-cifar").config.block == "basic"
    model = create_model("abn-resnet56-cifar")
    assert model.config.block == "bottleneck"
    assert len(model.stages[0]) == len(model.perception_stage) == 9  # (56 - 2) / 6 per stage
    assert model.fc.in_features == 256


def test_cifar_shapes_and_fashion_mnist_channels():
    model = ResNet(ResNetConfig(depth=20, in_chans=1, num_classes=7))
    out = model(torch.randn(3, 1, 28, 28))
    assert out.logits.shape == (3, 7) and out.features.shape == (3, 64)
    abn = AttentionBranchNetwork(ABNConfig(depth=20, in_chans=1, num_classes=7))
    out = abn(torch.randn(3, 1, 28, 28))
    assert out.logits.shape == out.att_logits.shape == (3, 7)
    assert out.attention.shape == (3, 1, 14, 14)  # stage 2's resolution
    assert ((out.attention > 0) & (out.attention < 1)).all()


def test_imagenet_shapes():
    model = create_model("resnet18", num_classes=5).eval()
    assert model(torch.randn(1, 3, 96, 96)).features.shape == (1, 512)
    abn = create_model("abn-resnet50", num_classes=5).eval()
    out = abn(torch.randn(1, 3, 96, 96))
    assert out.logits.shape == out.att_logits.shape == (1, 5)
    assert out.attention.shape == (1, 1, 6, 6)  # stage 3 at stride 16


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.randn(2, 3, 6, 6)
    y = ZeroPadShortcut(3, 5, stride=2)(x)
    assert y.shape == (2, 5, 3, 3)
    assert torch.equal(y[:, :3], x[:, :, 0::2, 0::2])
    assert not y[:, 3:].any()


@pytest.fixture
def abn() -> AttentionBranchNetwork:
    model = AttentionBranchNetwork(ABNConfig(depth=8, num_classes=4)).eval()
    with torch.no_grad():  # running statistics away from (0, 1), so the map is not flat
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def test_override_with_the_models_own_map_changes_nothing(abn: AttentionBranchNetwork):
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = abn(images)
        same = abn(images, attention_override=out.attention.clone())
    assert torch.equal(out.logits, same.logits)


def test_override_replaces_m_in_the_perception_branch_only(abn: AttentionBranchNetwork):
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = abn(images)
        zeros = abn(images, attention_override=torch.zeros_like(out.attention))
        # M = 0 leaves the features untouched: the plain backbone's path
        f = abn.stem(images)
        for stage in abn.stages:
            f = stage(f)
        plain = abn.fc(abn.perception_stage(f).mean(dim=(2, 3)))
    torch.testing.assert_close(zeros.logits, plain, rtol=0, atol=0)
    assert (zeros.logits - out.logits).abs().max() > 1e-4
    assert torch.equal(zeros.att_logits, out.att_logits)
    assert torch.equal(zeros.attention, out.attention)


def test_override_is_validated(abn: AttentionBranchNetwork):
    images = torch.randn(2, 3, 32, 32)
    with pytest.raises(InputError, match=r"\(2, 1, 16, 16\)"):
        abn(images, attention_override=torch.rand(2, 1, 32, 32))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        abn(images, attention_override=torch.full((2, 1, 16, 16), 1.5))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        abn(images, attention_override=torch.full((2, 1, 16, 16), float("nan")))
    with pytest.raises(InputError, match="floating"):
        abn(images, attention_override=torch.ones(2, 1, 16, 16, dtype=torch.long))


@pytest.mark.parametrize("name", ["resnet20-cifar", "abn-resnet20-cifar"])
def test_images_are_validated(name: str):
    model = create_model(name)
    for bad in (
        torch.randn(3, 32, 32),
        torch.randn(2, 1, 32, 32),
        torch.ones(2, 3, 32, 32, dtype=torch.uint8),
    ):
        with pytest.raises(InputError, match=r"images must be floating \(B, 3, H, W\)"):
            model(bad)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": 21}, "6n"),
        ({"block": "wide"}, "block must be one of"),
        ({"shortcut": "identity"}, "shortcut must be one of"),
        ({"style": "imagenet", "depth": 19}, "18, 34, 50"),
        ({"style": "imagenet", "depth": 50}, "uses bottleneck blocks"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_configs_are_validated(overrides: dict[str, object], message: str):
    with pytest.raises(ConfigError, match=message):
        create_model("resnet20-cifar", **overrides)
    with pytest.raises(ConfigError, match=message):
        create_model("abn-resnet20-cifar", **overrides)


def test_even_map_kernel_is_a_config_error():
    with pytest.raises(ConfigError, match="odd"):
        create_model("abn-resnet20-cifar", map_kernel_size=2)
    one = create_model("abn-resnet20-cifar", map_kernel_size=1)  # the paper's figure
    assert one.head.map_conv.kernel_size == (1, 1)
    assert one(torch.randn(2, 3, 32, 32)).attention.shape == (2, 1, 16, 16)


def test_cross_entropy_trains_both_branches():
    model = create_model("abn-resnet20-cifar", num_classes=3)
    out = model(torch.randn(4, 3, 32, 32))
    targets = torch.tensor([0, 1, 2, 0])
    (F.cross_entropy(out.att_logits, targets) + F.cross_entropy(out.logits, targets)).backward()
    assert model.head.map_conv.weight.grad.abs().sum() > 0  # through (1 + M) * f into the map
    assert model.attention_stage[0].conv1.weight.grad.abs().sum() > 0
    assert model.perception_stage[0].conv1.weight.grad.abs().sum() > 0
