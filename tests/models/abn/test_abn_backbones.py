"""ABN on WRN, DenseNet-BC and ResNeXt: official outputs (tests/fixtures/abn_official), and behaviour."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models import create_model
from attnlab.models.abn import densenet_abn as abn_densenet
from attnlab.models.abn import resnext_abn as abn_resnext
from attnlab.models.abn import wrn_abn as abn_wrn
from attnlab.models.abn.branch_network import KeyRule
from attnlab.models.abn.densenet_abn import ABNDenseNet, ABNDenseNetConfig
from attnlab.models.abn.resnext_abn import ABNResNeXt, ABNResNeXtConfig
from attnlab.models.abn.wrn_abn import ABNWideResNet, ABNWideResNetConfig
from attnlab.runs.convert import rename_key
from attnlab.runs.official import load_official_abn

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "abn_official"
OfficialKey = Callable[[str], str | None]


def by_rules(rules: list[KeyRule]) -> OfficialKey:
    """Our key for an official one (None: a tensor the model does not use)."""
    return lambda name: rename_key(name, rules)


# small presets with seeded official outputs (<name>.pt)
GOLDEN: dict[str, OfficialKey] = {
    "abn-wrn16-2-cifar": by_rules(abn_wrn.OFFICIAL_KEYS),
    "abn-densenet-bc40-12-cifar": by_rules(abn_densenet.OFFICIAL_KEYS),
    "abn-resnext11-2x64d-cifar": by_rules(abn_resnext.OFFICIAL_KEYS),
}
# the official default configurations: official layout (<name>.keys.txt), backbone size in the papers
FULL: dict[str, tuple[OfficialKey, int]] = {
    "abn-wrn28-10-cifar": (by_rules(abn_wrn.OFFICIAL_KEYS), 36_500_000),  # Zagoruyko & Komodakis: 36.5M
    "abn-densenet-bc100-12-cifar": (by_rules(abn_densenet.OFFICIAL_KEYS), 800_000),  # Huang et al.: 0.8M
    "abn-resnext29-8x64d-cifar": (by_rules(abn_resnext.OFFICIAL_KEYS), 34_400_000),  # Xie et al.: 34.4M
}
# the official ResNeXt builds bn_att and never applies it; nothing else may go unmapped
UNUSED_OFFICIAL = {"bn_att.weight", "bn_att.bias", "bn_att.running_mean", "bn_att.running_var"}


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def seeded_tensor(index: int, name: str, shape: list[int]) -> torch.Tensor:
    """The rule the goldens were made with (tests/fixtures/abn_official/README.md)."""
    g = torch.Generator().manual_seed(index)
    if name.endswith("running_var"):
        return torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    noise = torch.randn(shape, generator=g, dtype=torch.float64)
    if len(shape) > 1:  # conv / linear weight: std 1 / sqrt(fan_in)
        return noise / (torch.Size(shape[1:]).numel() ** 0.5)
    return noise * 0.1 + 1 if name.endswith("weight") else noise * 0.1


def official_tensor(index: int, name: str, shape: list[int]) -> torch.Tensor:
    """What the official model holds under ``name`` in the goldens' seeded state."""
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    return seeded_tensor(index, name, shape)


def official_layout(name: str) -> dict[str, list[int]]:
    if (FIXTURES / f"{name}.pt").is_file():
        golden = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
        return dict(zip(golden["official_keys"], golden["official_shapes"], strict=True))
    lines = (FIXTURES / f"{name}.keys.txt").read_text().splitlines()
    return {k: [int(d) for d in s.split(",") if d] for k, _, s in (line.partition(" ") for line in lines)}


def mapped_layout(name: str, official_key: OfficialKey) -> dict[str, list[int]]:
    layout = official_layout(name)
    unmapped = {k for k in layout if official_key(k) is None and not k.endswith("num_batches_tracked")}
    assert unmapped <= UNUSED_OFFICIAL, sorted(unmapped)
    return {ours: shape for k, shape in layout.items() if (ours := official_key(k)) is not None}


def seeded_model(name: str, official_key: OfficialKey) -> nn.Module:
    """Our preset in float64, eval mode, holding the goldens' seeded official weights."""
    layout = official_layout(name)
    model = create_model(name).double().eval()
    state = model.state_dict()
    for index, key in enumerate(sorted(layout)):
        ours = official_key(key)
        if ours is not None and state[ours].is_floating_point():
            state[ours] = seeded_tensor(index, key, layout[key])
    model.load_state_dict(state)
    return model


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, name: str, rtol: float) -> None:
    """Max error within ``rtol`` of max(1, max |expected|)."""
    assert actual.shape == expected.shape, name
    scale = max(1.0, expected.abs().max().item())
    error = (actual.double() - expected).abs().max().item()
    assert error <= rtol * scale, f"{name}: max abs error {error:.3g} at scale {scale:.3g}"


@pytest.mark.parametrize("name", [*GOLDEN, *FULL])
def test_layout_is_the_official_one(name: str):
    official_key = GOLDEN[name] if name in GOLDEN else FULL[name][0]
    with torch.device("meta"):  # shapes only: the full presets build in no time
        model = create_model(name)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == mapped_layout(name, official_key)


@pytest.mark.parametrize("name", GOLDEN)
def test_eval_outputs_match_the_official_code(name: str):
    golden = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    model = seeded_model(name, GOLDEN[name])
    with torch.no_grad():
        out = model(golden["input"])
        blind = model(golden["input"], attention_override=torch.zeros_like(out.attention))
    # float64 as the goldens (measured: <= 1e-15), then float32 as trained (measured: <= 5e-7)
    for field in ("att_logits", "logits", "attention"):
        assert_matches(getattr(out, field), golden[field], field, rtol=1e-9)
    with torch.no_grad():
        out32 = model.float()(golden["input"].float())
    for field in ("att_logits", "logits", "attention"):
        assert_matches(getattr(out32, field), golden[field], f"float32 {field}", rtol=1e-5)
    # guards the comparison: M must matter on these weights, far above the tolerance
    assert (blind.logits - golden["logits"]).abs().max() > 1e-3
    assert golden["attention"].std() > 1e-2


@pytest.mark.parametrize("name", GOLDEN)
def test_official_checkpoints_load_through_runs_official(name: str, tmp_path: Path):
    """The training script's checkpoint format, official names: the goldens' outputs in float32."""
    golden = torch.load(FIXTURES / f"{name}.pt", weights_only=True)
    layout = official_layout(name)
    state = {
        f"module.{key}": official_tensor(index, key, layout[key]) for index, key in enumerate(sorted(layout))
    }
    torch.save({"epoch": 1, "state_dict": state}, tmp_path / "checkpoint.pth.tar")
    model = load_official_abn(create_model(name), tmp_path / "checkpoint.pth.tar").eval()
    with torch.no_grad():
        out = model(golden["input"].float())
    for field in ("att_logits", "logits", "attention"):
        assert_matches(getattr(out, field), golden[field], f"float32 {field}", rtol=1e-5)
    del state[f"module.{sorted(layout)[-1]}"]
    state["module.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "damaged.pt")
    with pytest.raises(InputError, match=r"1 missing keys .*, 1 unexpected keys \(extra\.weight\)") as err:
        load_official_abn(create_model(name), tmp_path / "damaged.pt")
    assert "\n" not in str(err.value)


def test_official_loading_refuses_a_model_that_is_no_abn(tmp_path: Path):
    with pytest.raises(InputError, match=r"takes an ABN .* got Linear"):
        load_official_abn(nn.Linear(2, 2), tmp_path / "any.pt")  # type: ignore[type-var]


@pytest.mark.parametrize("name", FULL)
def test_backbones_have_the_papers_sizes_and_the_branch_its_hand_count(name: str):
    with torch.device("meta"):
        model = create_model(name)
    count = lambda *prefixes: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefixes))
    branch = count("attention_stage.", "head.")
    backbone = count("") - branch
    published = FULL[name][1]
    assert abs(backbone - published) <= 0.05 * published, f"{backbone:,} vs {published:,}"
    # a stage copy (its input width is the perception stage's) + BN(C), 1x1 C->K, BN(K), 1x1 K->K,
    # 3x3 K->1, BN(1); the ResNeXt head has no first BN (the official forward skips bn_att)
    c, k = model.head.channels, model.head.num_classes
    first_bn = 0 if isinstance(model, ABNResNeXt) else 2 * c
    head = first_bn + c * k + 2 * k + k * k + 9 * k + 2
    assert branch == count("perception_stage.") + head


def tiny_models() -> dict[str, nn.Module]:
    return {
        "wrn": ABNWideResNet(
            ABNWideResNetConfig(depth=10, widen_factor=1, drop_rate=0.2, num_classes=5, in_chans=1)
        ),
        "densenet": ABNDenseNet(
            ABNDenseNetConfig(depth=10, growth_rate=4, drop_rate=0.2, num_classes=5, in_chans=1)
        ),
        "resnext": ABNResNeXt(
            ABNResNeXtConfig(depth=11, cardinality=2, base_width=4, widen_factor=1, num_classes=5, in_chans=1)
        ),
    }


@pytest.fixture(params=["wrn", "densenet", "resnext"])
def tiny(request: pytest.FixtureRequest) -> nn.Module:
    return tiny_models()[request.param]


def test_shapes_and_attention_range(tiny: nn.Module):
    images = torch.randn(3, 1, 40, 24)
    out = tiny(images)
    stride = 4 if isinstance(tiny, ABNDenseNet) else 2  # the DenseNet map sits after both transitions
    assert out.att_logits.shape == out.logits.shape == (3, 5)
    assert out.attention.shape == (3, 1, 40 // stride, 24 // stride)
    assert ((out.attention > 0) & (out.attention < 1)).all()
    assert set(tiny.example_inputs(batch_size=4)) == {"images"}
    assert tiny(**tiny.example_inputs(batch_size=4)).logits.shape == (4, 5)


def test_every_parameter_gets_a_gradient(tiny: nn.Module):
    out = tiny(torch.randn(2, 1, 32, 32))
    targets = torch.tensor([1, 3])
    loss = nn.functional.cross_entropy(out.att_logits, targets) + nn.functional.cross_entropy(
        out.logits, targets
    )
    loss.backward()
    for name, p in tiny.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_override_replaces_m_in_the_perception_branch_only(tiny: nn.Module):
    tiny.eval()
    images = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = tiny(images)
        same = tiny(images, attention_override=out.attention.clone())
        edited = tiny(images, attention_override=torch.ones_like(out.attention))
    assert torch.equal(same.logits, out.logits)
    assert torch.equal(edited.att_logits, out.att_logits)
    assert torch.equal(edited.attention, out.attention)
    assert not torch.allclose(edited.logits, out.logits)


def test_override_is_validated(tiny: nn.Module):
    images = torch.randn(2, 1, 32, 32)
    m = tiny(images).attention.detach()
    with pytest.raises(InputError, match="attention_override must be floating"):
        tiny(images, attention_override=m[:, :, 1:])
    with pytest.raises(InputError, match=r"lie in \[0, 1\]"):
        tiny(images, attention_override=m + 1)
    with pytest.raises(InputError, match=r"lie in \[0, 1\]"):
        tiny(images, attention_override=torch.full_like(m, float("nan")))


@pytest.mark.parametrize(
    "images",
    [torch.randn(2, 3, 32, 32), torch.randn(1, 32, 32), torch.zeros(2, 1, 32, 32, dtype=torch.long)],
    ids=["wrong-channels", "no-batch", "integer"],
)
def test_bad_images_fail_with_one_line(tiny: nn.Module, images: torch.Tensor):
    with pytest.raises(InputError, match="images must be floating") as err:
        tiny(images)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: ABNWideResNet(ABNWideResNetConfig(depth=27)), "6n \\+ 4"),
        (lambda: ABNWideResNet(ABNWideResNetConfig(depth=4)), "6n \\+ 4"),
        (lambda: ABNWideResNet(ABNWideResNetConfig(widen_factor=0)), "widen_factor"),
        (lambda: ABNWideResNet(ABNWideResNetConfig(drop_rate=1.0)), "drop_rate"),
        (lambda: ABNWideResNet(ABNWideResNetConfig(map_kernel_size=2)), "map_kernel_size"),
        (lambda: ABNDenseNet(ABNDenseNetConfig(depth=43)), "6n \\+ 4"),
        (lambda: ABNDenseNet(ABNDenseNetConfig(growth_rate=0)), "growth_rate"),
        (lambda: ABNDenseNet(ABNDenseNetConfig(compression=0.0)), "compression"),
        (lambda: ABNDenseNet(ABNDenseNetConfig(compression=1.5)), "compression"),
        (lambda: ABNDenseNet(ABNDenseNetConfig(num_classes=0)), "num_classes"),
        (lambda: ABNResNeXt(ABNResNeXtConfig(depth=30)), "9n \\+ 2"),
        (lambda: ABNResNeXt(ABNResNeXtConfig(depth=2)), "9n \\+ 2"),
        (lambda: ABNResNeXt(ABNResNeXtConfig(cardinality=0)), "cardinality"),
        (lambda: ABNResNeXt(ABNResNeXtConfig(base_width=0)), "base_width"),
        (lambda: ABNResNeXt(ABNResNeXtConfig(in_chans=0)), "in_chans"),
        (lambda: create_model("abn-wrn16-2-cifar", depth=17), "6n \\+ 4"),
        (lambda: create_model("abn-resnext11-2x64d-cifar", cardinalty=4), "did you mean .cardinality."),
    ],
)
def test_bad_configs_fail_with_one_line(build: Callable[[], nn.Module], match: str):
    with pytest.raises(ConfigError, match=match) as err:
        build()
    assert "\n" not in str(err.value)


def test_map_kernel_size_one_is_the_papers_head():
    model = ABNWideResNet(ABNWideResNetConfig(depth=10, widen_factor=1, map_kernel_size=1))
    assert model.head.map_conv.weight.shape == (1, 10, 1, 1)
