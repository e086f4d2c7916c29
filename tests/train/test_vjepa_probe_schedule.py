"""How the probes are optimised: the official evaluation's cosine learning rate
(``task.probe.schedule``) and the average-pooling probe's own rate (``task.probe.average_lr``),
each against a loop that anneals with torch's own ``LambdaLR``."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.train.vjepa_probe import ProbeConfig, ProbeKind, build_probe, fit_probe


def torch_scheduled_fit(
    kind: ProbeKind,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: ProbeConfig,
    lr: float,
    factor: Callable[[int], float],
    seed: int,
) -> nn.Module:
    """AdamW at ``lr * factor(s)`` on optimiser step s = 0, 1, ... (``LambdaLR``), same init and batches."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = build_probe(kind, features.shape[-1], 3, config)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    for _ in range(config.steps):
        index = torch.randint(0, len(features), (config.batch_size,), generator=generator)
        loss = F.cross_entropy(probe(features[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return probe


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(40, 5, 8, generator=generator), torch.randint(0, 3, (40,), generator=generator)


def assert_same_parameters(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", ["attentive", "average"])
def test_cosine_is_the_official_schedule_from_lr_to_zero(kind: ProbeKind) -> None:
    features, labels = data()
    config = ProbeConfig(steps=12, lr=3e-2, batch_size=8, schedule="cosine")
    # the official WarmupCosineSchedule without warm-up, stepped before each iteration: k = s + 1
    official = torch_scheduled_fit(
        kind, features, labels, config, 3e-2, lambda s: 0.5 * (1 + math.cos(math.pi * (s + 1) / 12)), seed=4
    )
    assert_same_parameters(fit_probe(kind, features, labels, 3, config, seed=4), official)
    constant = fit_probe(kind, features, labels, 3, ProbeConfig(steps=12, lr=3e-2, batch_size=8), seed=4)
    assert not torch.allclose(next(constant.parameters()), next(official.parameters()), atol=1e-4)


def test_average_lr_is_the_average_probes_rate_only():
    features, labels = data()
    config = ProbeConfig(steps=6, lr=1e-3, average_lr=5e-2, batch_size=8)
    fast = torch_scheduled_fit("average", features, labels, config, 5e-2, lambda s: 1.0, seed=2)
    assert_same_parameters(fit_probe("average", features, labels, 3, config, seed=2), fast)
    slow = torch_scheduled_fit("attentive", features, labels, config, 1e-3, lambda s: 1.0, seed=2)
    assert_same_parameters(fit_probe("attentive", features, labels, 3, config, seed=2), slow)


@pytest.mark.parametrize(
    "config",
    [ProbeConfig(average_lr=0.0), ProbeConfig(schedule="linear")],  # type: ignore[arg-type]
)
def test_a_bad_schedule_or_rate_is_one_config_error(config: ProbeConfig):
    with pytest.raises(ConfigError, match=r"task\.probe"):
        config.check()
