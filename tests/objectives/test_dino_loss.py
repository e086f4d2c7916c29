"""DINO's loss against the official ``DINOLoss`` golden: 4 successive calls of one loss object
(epochs 0, 1, 3, 5) with its centre carried across them (README tolerances: loss rtol 1e-6, centre
and gradients atol 1e-7); and against a float64 double loop written from the paper's equations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError
from attnlab.objectives.dino import (
    DINOLoss,
    DINOLossConfig,
    cancel_last_layer_gradients,
    clip_gradients,
    cross_view_loss,
    target_entropy,
    teacher_targets,
)
from attnlab.objectives.terms import weighted_sum
from tests.models.dino._reference import load


def golden_loss() -> tuple[DINOLoss, dict]:
    golden = load("dino_loss_golden.pt")
    c = golden["config"]
    config = DINOLossConfig(
        out_dim=c["out_dim"],
        ncrops=c["ncrops"],
        warmup_teacher_temp=c["warmup_teacher_temp"],
        teacher_temp=c["teacher_temp"],
        warmup_teacher_temp_epochs=c["warmup_teacher_temp_epochs"],
        epochs=c["nepochs"],
        student_temp=c["student_temp"],
        center_momentum=c["center_momentum"],
    )
    return DINOLoss(config), golden


def test_four_successive_calls_equal_the_official_loss():
    loss_fn, golden = golden_loss()
    assert loss_fn.temperatures == pytest.approx(golden["teacher_temp_schedule"].tolist(), abs=1e-15)
    for call in golden["calls"]:
        assert loss_fn.temperatures[call["epoch"]] == pytest.approx(call["teacher_temp"], abs=1e-15)
        torch.testing.assert_close(loss_fn.center, call["center_before"], atol=1e-7, rtol=0)
        student = call["student_output"].clone().requires_grad_(True)
        loss = loss_fn(student, call["teacher_output"], call["epoch"])
        torch.testing.assert_close(loss.detach(), call["loss"], rtol=1e-6, atol=0)
        loss.backward()
        # the pairs are one contraction here, a loop there: float32 sums in another order, which
        # differ by a few units in the last place of the largest gradient (2 ulps seen on some CPUs)
        expected = call["grad_student_output"]
        ulp = torch.finfo(torch.float32).eps * float(expected.abs().max())
        torch.testing.assert_close(student.grad, expected, atol=4 * ulp, rtol=0)
        torch.testing.assert_close(loss_fn.center, call["center_after"], atol=1e-7, rtol=0)


def reference_loss(
    student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, temp: float, ncrops: int
) -> torch.Tensor:
    """Float64, pair by pair, from the paper: H(P_t(x_i), P_s(x_v)) over v != i, i in the 2 global crops."""
    s = (student.double() / 0.1).chunk(ncrops)
    t = F.softmax((teacher.double() - center.double()) / temp, dim=-1).chunk(2)
    pairs = [
        (-q * F.log_softmax(s[v], dim=-1)).sum(-1).mean()
        for i, q in enumerate(t)
        for v in range(ncrops)
        if v != i
    ]
    return torch.stack(pairs).mean()


def test_equals_a_float64_pairwise_loop_and_moves_the_centre_towards_the_teacher_mean():
    config = DINOLossConfig(out_dim=11, ncrops=5, teacher_temp=0.07, warmup_teacher_temp_epochs=2, epochs=4)
    loss_fn = DINOLoss(config)
    temps = loss_fn.temperatures
    loss_fn.center = torch.randn(1, 11) * 0.1
    start = loss_fn.center.clone()
    student, teacher = torch.randn(5 * 4, 11), torch.randn(2 * 4, 11) + 1.0
    loss = loss_fn(student, teacher, epoch=1)
    expected = reference_loss(student, teacher, start, temps[1], ncrops=5)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss_fn.center, 0.9 * start + 0.1 * teacher.mean(0, keepdim=True))
    assert temps == pytest.approx([0.04, 0.07, 0.07, 0.07])


def test_target_entropy_is_ln_k_when_uniform_zero_when_one_hot_and_the_loss_minus_it_is_the_mean_kl():
    k, batch, ncrops = 7, 3, 4
    assert target_entropy(torch.full((2, batch, k), 1 / k)).item() == pytest.approx(
        torch.log(torch.tensor(7.0)).item()
    )
    assert target_entropy(F.one_hot(torch.tensor([[0, 3, 6], [1, 1, 2]]), k).double()).item() == 0.0
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(2 * batch, k, generator=gen, dtype=torch.float64)
    student = torch.randn(ncrops * batch, k, generator=gen, dtype=torch.float64)
    targets = teacher_targets(teacher, torch.zeros(1, k, dtype=torch.float64), 0.04)
    log_p = F.log_softmax(student / 0.1, dim=-1).view(ncrops, batch, k)
    kls = [
        (targets[i] * (targets[i].log() - log_p[v])).sum(-1).mean()
        for i in range(2)
        for v in range(ncrops)
        if v != i
    ]  # KL(P_t || P_s) pair by pair, from the definition
    loss = cross_view_loss(student, targets, 0.1)
    torch.testing.assert_close(loss - target_entropy(targets), torch.stack(kls).mean(), rtol=1e-12, atol=0)


def test_a_crop_is_never_its_own_target_in_crop_major_order():
    # student crop 0 (rows 0..B-1) learns from teacher crop 1 only: teacher crop 0 leaves its gradient alone
    config = DINOLossConfig(out_dim=6, ncrops=3, epochs=1)
    batch = 2
    teacher = torch.randn(2 * batch, 6)
    other = teacher.clone()
    other[:batch] = torch.randn(batch, 6)  # teacher crop 0 changed, crop 1 kept
    grads = []
    for t in (teacher, other):
        student = torch.randn(3 * batch, 6, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        DINOLoss(config)(student, t, 0).backward()
        grads.append(student.grad)
    torch.testing.assert_close(grads[0][:batch], grads[1][:batch], atol=0, rtol=0)
    assert not torch.allclose(grads[0][batch:], grads[1][batch:])  # crops 1 and 2 do see teacher crop 0


def test_terms_and_no_gradient_to_the_teacher():
    loss_fn = DINOLoss(DINOLossConfig(out_dim=6, ncrops=4, epochs=2))
    student = torch.randn(8, 6, requires_grad=True)
    teacher = torch.randn(4, 6, requires_grad=True)
    terms = loss_fn.terms(student, teacher, 1)
    assert list(terms) == ["dino"]
    weighted_sum(terms).backward()
    assert teacher.grad is None and student.grad is not None
    assert "center" in loss_fn.state_dict()


def test_bad_shapes_epochs_and_configs_are_one_line_errors():
    loss_fn = DINOLoss(DINOLossConfig(out_dim=6, ncrops=4, epochs=2))
    with pytest.raises(InputError, match="teacher output"):
        loss_fn(torch.randn(8, 6), torch.randn(3, 6), 0)
    with pytest.raises(InputError, match=r"\(8, 6\)"):
        loss_fn(torch.randn(6, 6), torch.randn(4, 6), 0)
    with pytest.raises(InputError, match="epoch"):
        loss_fn(torch.randn(8, 6), torch.randn(4, 6), 2)
    with pytest.raises(ConfigError, match="ncrops"):
        DINOLoss(DINOLossConfig(ncrops=1))
    with pytest.raises(ConfigError, match="warmup_teacher_temp_epochs"):
        DINOLoss(DINOLossConfig(warmup_teacher_temp_epochs=5, epochs=3))


def test_cancel_last_layer_gradients_only_in_the_frozen_epochs():
    layer = torch.nn.Linear(3, 2)
    layer(torch.randn(1, 3)).sum().backward()
    cancel_last_layer_gradients(layer, epoch=1, freeze_last_layer=1)
    assert layer.weight.grad is not None
    cancel_last_layer_gradients(layer, epoch=0, freeze_last_layer=1)
    assert layer.weight.grad is None and layer.bias.grad is None


def test_clip_gradients_scales_each_parameter_on_its_own():
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.grad = torch.full((3, 4), 2.0)  # norm 2 * sqrt(12) ~ 6.93: clipped
        model.bias.grad = torch.tensor([0.3, 0.0, 0.4])  # norm 0.5: kept
    norms = clip_gradients(model, 3.0)
    assert norms == pytest.approx([2 * 12**0.5, 0.5])
    torch.testing.assert_close(model.weight.grad.norm(), torch.tensor(3.0 * 6.928203 / (6.928203 + 1e-6)))
    torch.testing.assert_close(model.bias.grad, torch.tensor([0.3, 0.0, 0.4]))
    with pytest.raises(ConfigError, match="clip"):
        clip_gradients(model, 0.0)
