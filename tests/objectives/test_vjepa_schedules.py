"""V-JEPA's schedules and one training step against the official code (``vjepa_small_train_step.pt``):
the 50 lr / weight-decay / momentum values, the gradients of encoder and predictor, and the
parameters after one AdamW step and the EMA update (README tolerances: gradients 1e-6 abs,
parameters 1e-6 where the golden |grad| > 1e-7 and 5e-4 elsewhere, EMA exact)."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models.vjepa.vjepa import ENCODER_KEYS, PREDICTOR_KEYS, SMALL_REFERENCE
from attnlab.objectives.vjepa import jepa_terms
from attnlab.objectives.vjepa_schedules import VJEPASchedules, apply_schedules, decay_groups, ema_update
from attnlab.runs.convert import rename_keys
from attnlab.runs.official import load_official_vjepa, split_fused_qkv
from tests.models.vjepa._reference import load, reference

# the golden's init_opt: ipe 10, 4 epochs, warmup 1 epoch, ipe_scale 1.25
SCHEDULES = VJEPASchedules(total_steps=40, warmup_steps=10)


def ours(official: dict[str, torch.Tensor], rules) -> dict[str, torch.Tensor]:
    state = {k.removeprefix("backbone."): v for k, v in official.items()}
    return rename_keys(split_fused_qkv(state), rules)[0]


def test_fifty_schedule_values_equal_the_official_ones():
    golden = load("vjepa_small_train_step.pt")["schedules"]
    steps = range(1, 51)
    assert [SCHEDULES.lr_at(k) for k in steps] == pytest.approx(golden["lr"], abs=1e-12)
    assert [SCHEDULES.weight_decay_at(k) for k in steps] == pytest.approx(golden["wd"], abs=1e-12)
    assert [SCHEDULES.momentum_at(k) for k in steps] == pytest.approx(golden["momentum"], abs=1e-12)


def test_hand_values():
    s = VJEPASchedules(total_steps=8, warmup_steps=2, start_lr=0.0, lr=1.0, final_lr=0.0, ipe_scale=1.0)
    assert s.lr_at(1) == 0.5 and s.lr_at(2) == 1.0
    assert s.lr_at(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert s.weight_decay_at(8) == pytest.approx(0.4) and s.momentum_at(1) == 0.998
    with pytest.raises(ConfigError, match="ipe_scale"):
        VJEPASchedules(total_steps=8, warmup_steps=2, ipe_scale=0.5).check()


def test_one_adamw_step_and_ema_update_equal_the_official_ones():
    golden, step = load("vjepa_small_golden.pt"), load("vjepa_small_train_step.pt")
    model = load_official_vjepa(reference() / "vjepa_small_state_dict.pt", config=SMALL_REFERENCE)
    optimizer = torch.optim.AdamW(decay_groups(model.encoder, model.predictor), betas=(0.9, 0.999), eps=1e-8)
    lr, wd = apply_schedules(optimizer, SCHEDULES, 1)
    assert (lr, wd) == pytest.approx((golden["step/lr"], golden["step/wd"]), abs=1e-12)

    out = model(golden["input/clips"], golden["masks/enc"], golden["masks/pred"])
    terms = jepa_terms(out)
    torch.testing.assert_close(terms["jepa"], golden["loss/jepa"], atol=1e-6, rtol=0)
    terms["jepa"].backward()

    for part, rules in (("encoder", ENCODER_KEYS), ("predictor", PREDICTOR_KEYS)):
        expected = ours(step[f"grads/{part}"], rules)
        grads = {n: p.grad for n, p in getattr(model, part).named_parameters()}
        assert set(expected) == set(grads), part
        for name, g in expected.items():
            torch.testing.assert_close(grads[name], g, atol=1e-6, rtol=0, msg=f"{part}.{name}")
    before = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}

    optimizer.step()
    momentum = SCHEDULES.momentum_at(1)
    assert momentum == golden["step/momentum"]
    ema_update(model.target_encoder, model.encoder, momentum)

    for part, rules in (("encoder", ENCODER_KEYS), ("predictor", PREDICTOR_KEYS)):
        after = ours(step[f"after/{part}"], rules)
        grads = ours(step[f"grads/{part}"], rules)
        for name, p in getattr(model, part).named_parameters():
            tight = grads[name].abs() > 1e-7
            diff = (p.detach() - after[name]).abs()
            assert float(torch.where(tight, diff, 0).max()) <= 1e-6, f"{part}.{name}"
            assert float(diff.max()) <= 5e-4, f"{part}.{name}"
    online = dict(model.encoder.named_parameters())
    target = ours(step["after/target_encoder"], ENCODER_KEYS)
    for name, p in model.target_encoder.named_parameters():
        exact = momentum * before[name] + (1 - momentum) * online[name].detach()
        assert torch.equal(p.detach(), exact), name
        # the EMA of the golden's own parameters is exact; ours differ only where AdamW's first step may
        torch.testing.assert_close(p.detach(), target[name], atol=2 * 5e-4 * (1 - momentum) + 1e-7, rtol=0)
    assert all(not p.requires_grad and p.grad is None for p in model.target_encoder.parameters())
