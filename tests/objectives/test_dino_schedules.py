"""DINO's schedules against ``dino_summary.json`` (made by the official ``cosine_scheduler`` as
``main_dino.py`` calls it) and against numpy; the EMA teacher step against its formula."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.models.vit.dino_head import DINOHead, DINOHeadConfig
from attnlab.objectives.dino_schedules import (
    DINOSchedules,
    cosine_schedule,
    linspace,
    teacher_temperatures,
    teacher_update,
)
from attnlab.objectives.vjepa_schedules import apply_schedules, decay_groups
from tests.models.dino._reference import reference


def summary() -> dict:
    return json.loads((reference() / "dino_summary.json").read_text())


def golden_schedules() -> DINOSchedules:
    c = summary()["schedules_config"]
    return DINOSchedules(
        epochs=c["epochs"],
        iters_per_epoch=c["niter_per_ep"],
        batch_size=c["batch_size_per_gpu"] * c["world_size"],
        lr=c["lr"],
        min_lr=c["min_lr"],
        warmup_epochs=c["warmup_epochs"],
        weight_decay=c["weight_decay"],
        weight_decay_end=c["weight_decay_end"],
        momentum_teacher=c["momentum_teacher"],
    )


def test_lr_weight_decay_and_momentum_equal_the_official_schedules():
    golden, ours = summary()["schedules"], golden_schedules()
    assert ours.lr_values == pytest.approx(golden["lr"], abs=1e-15, rel=1e-13)
    assert ours.weight_decay_values == pytest.approx(golden["wd"], abs=1e-15, rel=1e-13)
    assert ours.momentum_values == pytest.approx(golden["momentum"], abs=1e-15, rel=1e-13)


def test_the_warm_up_repeats_the_peak_and_the_cosine_never_reaches_final():
    lr = golden_schedules().lr_values
    warmup = 2 * 4
    assert lr[warmup - 1] == lr[warmup] == max(lr)
    assert lr[0] == 0.0 and min(lr[warmup:]) > 1e-6
    momentum = golden_schedules().momentum_values
    assert momentum[-1] < 1.0 and all(a < b for a, b in itertools.pairwise(momentum))


def test_teacher_temperatures_equal_the_official_ones():
    config = summary()["loss_config"]
    temps = teacher_temperatures(
        config["warmup_teacher_temp"],
        config["teacher_temp"],
        config["warmup_teacher_temp_epochs"],
        config["nepochs"],
    )
    assert temps == pytest.approx(summary()["teacher_temp_schedule"], abs=1e-15)


@pytest.mark.parametrize(
    ("start", "stop", "num"), [(0.0, 1.25e-4, 8), (0.04, 0.07, 30), (0.3, -2.0, 7), (1.0, 2.0, 1)]
)
def test_linspace_is_numpys_value_for_value(start, stop, num):
    assert linspace(start, stop, num) == np.linspace(start, stop, num).tolist()


def test_cosine_schedule_against_numpy_and_bad_arguments():
    ours = cosine_schedule(0.3, 0.01, epochs=7, iters_per_epoch=3, warmup_epochs=2, start_warmup=0.05)
    iters = np.arange(5 * 3)
    expected = np.concatenate(
        [np.linspace(0.05, 0.3, 6), 0.01 + 0.5 * (0.3 - 0.01) * (1 + np.cos(np.pi * iters / len(iters)))]
    )
    assert ours == pytest.approx(expected.tolist(), abs=1e-15)
    with pytest.raises(ConfigError, match="warmup_epochs"):
        cosine_schedule(1.0, 0.0, epochs=2, iters_per_epoch=3, warmup_epochs=3)
    with pytest.raises(ConfigError, match="iters_per_epoch"):
        cosine_schedule(1.0, 0.0, epochs=2, iters_per_epoch=0)
    with pytest.raises(ConfigError, match="momentum_teacher"):
        DINOSchedules(epochs=2, iters_per_epoch=3, momentum_teacher=1.5).momentum_at(0)


def tiny() -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 5), DINOHead(DINOHeadConfig(in_dim=5, out_dim=7, hidden_dim=8, bottleneck_dim=3))
    )


def test_teacher_update_is_the_ema_of_every_parameter_with_the_scheduled_momentum():
    student, teacher = tiny(), tiny()
    before = {n: p.detach().clone() for n, p in teacher.named_parameters()}
    momentum = golden_schedules().momentum_values[5]
    teacher_update(teacher, student, momentum)
    online = dict(student.named_parameters())
    for name, p in teacher.named_parameters():
        expected = momentum * before[name].double() + (1 - momentum) * online[name].detach().double()
        torch.testing.assert_close(p.detach().double(), expected, atol=1e-7, rtol=0, msg=name)
    assert not torch.equal(teacher[0].weight, before["0.weight"])
    teacher_update(teacher, student, 0.0)
    assert all(torch.equal(p, online[n]) for n, p in teacher.named_parameters())
    with pytest.raises(ConfigError, match="momentum"):
        teacher_update(teacher, student, 1.2)
    with pytest.raises(ConfigError, match="same parameters"):
        teacher_update(teacher, nn.Linear(6, 5), 0.9)


def test_shared_groups_and_apply_schedules_set_the_official_lr_and_weight_decay_per_iteration():
    student = tiny()
    optimizer = torch.optim.AdamW(decay_groups(student))
    decayed, exempt = optimizer.param_groups
    # biases and 1-D tensors never decay; the frozen g of the normalised last layer is in no group
    names = {id(p): n for n, p in student.named_parameters()}
    assert sorted(names[id(p)] for p in exempt["params"]) == [
        "0.bias",
        "1.mlp.0.bias",
        "1.mlp.2.bias",
        "1.mlp.4.bias",
    ]
    assert "1.last_layer.weight_g" not in [names[id(p)] for p in decayed["params"] + exempt["params"]]
    golden, schedules = summary()["schedules"], golden_schedules()
    for it in (0, 7, 8, 19):
        lr, wd = apply_schedules(optimizer, schedules, it)
        assert (lr, wd) == pytest.approx((golden["lr"][it], golden["wd"][it]), abs=1e-15, rel=1e-13)
        assert (
            decayed["lr"] == exempt["lr"] == lr
            and decayed["weight_decay"] == wd
            and exempt["weight_decay"] == 0
        )
        assert schedules.momentum_at(it) == pytest.approx(golden["momentum"][it], abs=1e-15)
    with pytest.raises(ConfigError, match="iteration 20"):
        schedules.lr_at(20)
