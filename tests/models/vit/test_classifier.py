"""ViTClassifier (the student) and AdaptedViT (a pre-trained backbone: linear / partial-1 / finetune)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models._submodel import SubModel
from attnlab.models.vit.classifier import (
    VIT_STUDENT_P4,
    AdaptedViT,
    AdaptedViTConfig,
    ViTClassifier,
)
from attnlab.models.vit.mae import MAE, MAE_TINY_P4

pytestmark = pytest.mark.usefixtures("one_thread")

D, DEPTH, CLASSES = 64, 4, 10  # MAE_TINY_P4's encoder: 28 px grey, patch 4


def block_params(d: int) -> int:
    """One pre-norm block by hand: 2 LayerNorms, q (D x D), kv (D x 2D), proj (D x D), MLP D -> 4D -> D."""
    return 2 * 2 * d + (d * d + d) + (2 * d * d + 2 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)


HEAD = D * CLASSES + CLASSES
PATCH = 1 * 4 * 4 * D + D
EXPECTED = {
    "linear": HEAD,  # the BatchNorm has no affine parameters
    "partial-1": block_params(D) + 2 * D + HEAD,  # last block, final norm, head
    "finetune": PATCH + D + DEPTH * block_params(D) + 2 * D + HEAD,  # + [CLS]; positions are a fixed buffer
}


def adapted(mode: str, seed: int = 0) -> AdaptedViT:
    torch.manual_seed(seed)
    mae = MAE(MAE_TINY_P4)
    return AdaptedViT(AdaptedViTConfig(mode=mode), pretrained=mae)  # type: ignore[arg-type]


def test_student_preset_and_logits_from_the_normed_cls():
    torch.manual_seed(0)
    model = ViTClassifier(VIT_STUDENT_P4)
    c = model.config
    assert (c.img_size, c.patch_size, c.in_chans, c.dim, c.depth, c.num_heads) == (28, 4, 1, 96, 4, 3)
    x = torch.randn(3, 1, 28, 28)
    out = model(x)
    cls = model.vit(x)[:, 0]
    torch.testing.assert_close(out.logits, cls @ model.head.weight.T + model.head.bias)
    assert out.logits.shape == (3, 10) and torch.equal(out.features, cls)


@pytest.mark.parametrize("mode", ["linear", "partial-1", "finetune"])
def test_trainable_parameters_by_hand(mode: str):
    assert adapted(mode).trainable_parameters() == EXPECTED[mode]


@pytest.mark.parametrize("mode", ["linear", "partial-1", "finetune"])
def test_one_step_changes_exactly_what_the_mode_trains_and_the_frozen_part_stays_in_eval(mode: str):
    model = adapted(mode)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    F.cross_entropy(model(x).logits, y).backward()
    opt.step()
    last = f"backbone.blocks.{DEPTH - 1}."
    trains = {
        "linear": lambda n: n.startswith("head."),
        "partial-1": lambda n: n.startswith(("head.", last, "backbone.norm.")),
        "finetune": lambda n: True,
    }[mode]
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == trains(name), name
        if not trains(name):
            assert p.grad is None and not p.requires_grad, name
    frozen = {id(m) for m in model.frozen_modules() for m in m.modules()}
    for name, m in model.named_modules():
        assert m.training == (id(m) not in frozen), name


def test_frozen_part_runs_without_a_graph_unless_the_images_need_gradients():
    model = adapted("partial-1")
    seen = []
    model.backbone.blocks[DEPTH - 2].register_forward_hook(lambda m, a, out: seen.append(out.requires_grad))
    model(torch.randn(2, 1, 28, 28))
    images = torch.randn(2, 1, 28, 28, requires_grad=True)
    model(images).logits.sum().backward()
    assert seen == [False, True] and images.grad is not None


def test_modes_agree_in_eval_with_the_same_weights():
    """Freezing changes what trains, not the function: same weights (no probe norm), same logits."""
    a, b = adapted("partial-1"), adapted("finetune")
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(a(x).logits, b(x).logits)
    lin = AdaptedViT(AdaptedViTConfig(mode="linear", probe_norm=False), pretrained=MAE(MAE_TINY_P4))
    lin.load_state_dict(a.state_dict())
    torch.testing.assert_close(lin.eval()(x).logits, a(x).logits)


def test_linear_probe_reads_cls_through_a_batchnorm_without_affine():
    model = adapted("linear")
    assert isinstance(model.probe_norm, nn.BatchNorm1d) and not model.probe_norm.affine
    assert isinstance(adapted("partial-1").probe_norm, nn.Identity)


def test_bad_pretrained_models_are_one_line():
    with pytest.raises(ConfigError, match=r"model\.pretrained is a Linear, which has no backbone\(\)"):
        AdaptedViT(AdaptedViTConfig(), pretrained=nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="use mode 'linear' for a frozen backbone"):
        AdaptedViT(AdaptedViTConfig(pretrained=SubModel(name="mae-vit-tiny-p4", frozen=True)))
    with pytest.raises(ConfigError, match="mode must be one of"):
        AdaptedViTConfig(mode="partial-2")  # type: ignore[arg-type]
