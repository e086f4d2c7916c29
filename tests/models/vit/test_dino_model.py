"""The DINO model: the teacher starts as the student, gets no gradient, has no stochastic depth;
grouped multi-crop forward equals crop-by-crop; backbone() is the teacher's ViT (MAE's: its encoder)."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models import create_model
from attnlab.models.vit.dino import DINO, same_size_runs
from attnlab.models.vit.image_vit import ImageViT
from attnlab.models.vit.mae import MAE


def small_dino() -> DINO:
    torch.manual_seed(0)
    model = create_model("dino-vit-p4", dim=32, depth=2, num_heads=2, out_dim=64, head_hidden_dim=32,
                         bottleneck_dim=16)  # fmt: skip
    assert isinstance(model, DINO)
    return model


def crops(batch: int = 3) -> list[torch.Tensor]:
    return [torch.randn(batch, 1, 28, 28) for _ in range(2)] + [
        torch.randn(batch, 1, 12, 12) for _ in range(3)
    ]


def test_teacher_starts_as_the_student_and_gets_no_gradient():
    model = small_dino()
    for (name, s), t in zip(
        model.student.state_dict().items(), model.teacher.state_dict().values(), strict=True
    ):
        assert torch.equal(s, t), name
    assert all(not p.requires_grad for p in model.teacher.parameters())
    out = model(crops())
    assert out.student.shape == (5 * 3, 64) and out.teacher.shape == (2 * 3, 64)
    assert not out.teacher.requires_grad
    out.student.square().mean().backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student.backbone.config.drop_path_rate == 0.1
    assert model.teacher.backbone.config.drop_path_rate == 0.0


def test_grouped_forward_equals_one_backbone_call_per_crop():
    model = small_dino().eval()
    views = crops()
    assert [len(run) for run in same_size_runs(views)] == [2, 3]
    with torch.no_grad():
        out = model(views)
        one_by_one = torch.cat([model.student.head(model.student.backbone(v)[:, 0]) for v in views])
        teacher = torch.cat([model.teacher.head(model.teacher.backbone(v)[:, 0]) for v in views[:2]])
    assert torch.allclose(out.student, one_by_one, atol=1e-5)
    assert torch.allclose(out.teacher, teacher, atol=1e-5)


def test_backbone_is_the_teacher_vit_and_mae_its_encoder():
    model = small_dino()
    assert isinstance(model.backbone(), ImageViT) and model.backbone() is model.teacher.backbone
    mae = create_model("mae-vit-p4")
    assert isinstance(mae, MAE) and mae.backbone() is mae.encoder
    # the two presets share one backbone architecture (positions aside)
    d, m = create_model("dino-vit-p4").backbone().config, mae.backbone().config
    assert (d.img_size, d.patch_size, d.in_chans, d.dim, d.depth, d.num_heads) == (
        m.img_size, m.patch_size, m.in_chans, m.dim, m.depth, m.num_heads,
    )  # fmt: skip
    assert (d.pos_embed, m.pos_embed) == ("learned", "sincos2d")


def test_bad_crops_are_one_line():
    model = small_dino()
    with pytest.raises(InputError, match="list of >= 2 crops"):
        model([torch.randn(2, 1, 28, 28)])
    with pytest.raises(InputError, match="global crops must have one shape"):
        model([torch.randn(2, 1, 28, 28), torch.randn(2, 1, 12, 12)])
