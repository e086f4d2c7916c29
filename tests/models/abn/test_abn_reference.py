"""ResNet-ABN against the official CIFAR code's outputs (../shared/reference/abn), and its loss."""

from pathlib import Path

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.abn.resnet_abn import OFFICIAL_KEYS, AttentionBranchNetwork
from attnlab.objectives.abn import abn_loss, attention_map_distance
from attnlab.runs.convert import rename_key
from attnlab.runs.official import load_official_abn_cifar

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "abn"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "abn_cifar_golden.pt").is_file(),
    reason=f"official ABN reference files not found in {REFERENCE}",
)


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


def golden(depth: int) -> dict[str, torch.Tensor]:
    flat = torch.load(REFERENCE / "abn_cifar_golden.pt", weights_only=True)
    prefix = f"resnet{depth}/"
    return {k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix)}


def official(depth: int) -> AttentionBranchNetwork:
    return load_official_abn_cifar(REFERENCE / f"abn_cifar_resnet{depth}_state_dict.pt", depth, 10)


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    """Max error within 1e-5 of the tensor's scale: float32 rounding grows with the magnitude
    (the seeded depth-56 logits reach ~2e4), so the bound is relative to max |expected|, at least 1."""
    assert actual.shape == expected.shape, name
    scale = max(1.0, expected.abs().max().item())
    error = (actual - expected).abs().max().item()
    assert error <= 1e-5 * scale, f"{name}: max abs error {error:.3g} at scale {scale:.3g}"


@needs_reference
@pytest.mark.parametrize("depth", [20, 56])
def test_layout_is_the_official_one(depth: int):
    keys = (REFERENCE / f"abn_cifar_resnet{depth}_keys.txt").read_text().split("\n")
    official_shapes = {}
    for line in filter(None, keys):
        name, shape = line.split(" ", 1)
        official_shapes[rename_key(name, OFFICIAL_KEYS)] = shape
    model = official(depth)
    ours = {k: str(tuple(v.shape)) for k, v in model.state_dict().items()}
    assert ours == official_shapes


@needs_reference
@pytest.mark.parametrize("depth", [20, 56])
def test_eval_outputs_match_the_official_code(depth: int):
    ref = golden(depth)
    model = official(depth).eval()
    with torch.no_grad():
        out = model(ref["input"])
    assert_matches(out.att_logits, ref["eval/att_logits"], "att_logits")
    assert_matches(out.logits, ref["eval/per_logits"], "per_logits")
    assert_matches(out.attention, ref["eval/attention"], "attention")


@needs_reference
@pytest.mark.parametrize("depth", [20, 56])
def test_training_mode_loss_matches_the_official_code(depth: int):
    ref = golden(depth)
    model = official(depth).train()  # batch statistics in every BatchNorm
    out = model(ref["input"])
    loss = abn_loss(out.att_logits, out.logits, ref["labels"])
    assert abs(loss.total().item() - ref["train/loss"].item()) <= 1e-5 * max(1.0, ref["train/loss"].item())


@needs_reference
def test_eval_differs_from_training_mode():
    """Guards the golden tests above: the running statistics must matter on these weights."""
    ref = golden(20)
    model = official(20)
    train_logits = model.train()(ref["input"]).logits.detach()
    with torch.no_grad():
        eval_logits = official(20).eval()(ref["input"]).logits
    assert (train_logits - eval_logits).abs().max() > 1e-2


@needs_reference
def test_loads_the_training_scripts_checkpoint_format(tmp_path: Path):
    state = torch.load(REFERENCE / "abn_cifar_resnet20_state_dict.pt", weights_only=True)
    wrapped = {"epoch": 300, "state_dict": {f"module.{k}": v for k, v in state.items()}, "best_acc": 90.0}
    torch.save(wrapped, tmp_path / "checkpoint.pth.tar")
    model = load_official_abn_cifar(tmp_path / "checkpoint.pth.tar", 20, 10)
    assert torch.equal(model.stem.conv.weight, state["conv1.weight"])
    assert torch.equal(model.head.map_conv.weight, state["att_conv3.weight"])


@needs_reference
def test_wrong_depth_or_classes_fail_with_one_line():
    with pytest.raises(InputError, match="missing keys") as err:
        load_official_abn_cifar(REFERENCE / "abn_cifar_resnet20_state_dict.pt", 56, 10)
    assert "\n" not in str(err.value)
    with pytest.raises(
        InputError, match=r"att_conv.weight has shape \(10, 64, 1, 1\), expected \(100, 64, 1, 1\)"
    ):
        load_official_abn_cifar(REFERENCE / "abn_cifar_resnet20_state_dict.pt", 20, 100)
    with pytest.raises(InputError, match="depth must be 6n"):
        load_official_abn_cifar(REFERENCE / "abn_cifar_resnet20_state_dict.pt", 21, 10)


def test_missing_and_corrupt_files_fail_with_one_line(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        load_official_abn_cifar(tmp_path / "absent.pt", 20, 10)
    (tmp_path / "corrupt.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(InputError, match="cannot read") as err:
        load_official_abn_cifar(tmp_path / "corrupt.pt", 20, 10)
    assert "\n" not in str(err.value)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(InputError, match="not a state dict"):
        load_official_abn_cifar(tmp_path / "list.pt", 20, 10)


def test_untrusted_pickles_are_refused(tmp_path: Path):
    torch.save({"conv1.weight": torch.zeros(1), "hook": Path("x")}, tmp_path / "pickle.pt")
    with pytest.raises(InputError, match="cannot read"):
        load_official_abn_cifar(tmp_path / "pickle.pt", 20, 10)


def test_loss_is_the_sum_of_both_cross_entropies():
    att, per = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    targets = torch.tensor([0, 6, 3, 3, 1])
    rows = torch.arange(5)
    ce = lambda z: (torch.logsumexp(z, 1) - z[rows, targets]).mean()
    loss = abn_loss(att, per, targets)
    torch.testing.assert_close(loss.attention_branch, ce(att), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.perception_branch, ce(per), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.total(), ce(att) + ce(per), rtol=1e-12, atol=1e-12)
    assert loss.map is None


def test_map_term_is_the_mean_per_image_l2_distance():
    m = torch.rand(3, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    m_edit = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    per_image = [((m[i] - m_edit[i]) ** 2).sum().sqrt() for i in range(3)]
    expected_map = sum(per_image) / 3
    att, per = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    targets = torch.tensor([4, 0, 2])
    loss = abn_loss(att, per, targets, attention=m, target_attention=m_edit, map_weight=0.5)
    base = abn_loss(att, per, targets).total()
    torch.testing.assert_close(loss.map, expected_map, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss.total(), base + 0.5 * expected_map, rtol=1e-12, atol=1e-12)
    loss.total().backward()
    assert m.grad is not None and m.grad.abs().sum() > 0


def test_loss_validates_its_inputs():
    att, targets = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(InputError, match="both be"):
        abn_loss(att, torch.randn(2, 4), targets)
    with pytest.raises(InputError, match="targets must be int64"):
        abn_loss(att, att, targets.float())
    with pytest.raises(InputError, match="together"):
        abn_loss(att, att, targets, attention=torch.rand(2, 1, 4, 4))
    with pytest.raises(InputError, match=r"\(B, 1, h, w\)"):
        attention_map_distance(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5))
    with pytest.raises(InputError, match="map_weight"):
        abn_loss(
            att,
            att,
            targets,
            attention=torch.rand(2, 1, 4, 4),
            target_attention=torch.rand(2, 1, 4, 4),
            map_weight=-1.0,
        )
