"""The probes' per-channel standardisation (``task.probe.standardize``): the same map as a
BatchNorm without affine parameters over the training tokens, and what it is for (features
that vary by a few per cent around a large offset, where a plain probe stays at chance)."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.train.vjepa_probe import ProbeConfig, Standardized, fit_probe


def test_standardized_is_batchnorm_without_affine_over_the_training_tokens():
    torch.manual_seed(0)
    features = 3.0 + 0.1 * torch.randn(6, 5, 4, dtype=torch.float64)  # (N, L, D)
    probe = Standardized.fitted(nn.Identity(), features.float(), eps=1e-6)
    norm = nn.BatchNorm1d(4, eps=1e-6, affine=False, dtype=torch.float64).train()  # batch statistics
    expect = norm(features.flatten(0, 1)).view_as(features)  # (N * L, D) -> (N, L, D)
    torch.testing.assert_close(probe(features.float()), expect.float(), rtol=0, atol=1e-5)
    # test features use the training statistics, not their own
    shifted = features.float() + 1.0
    torch.testing.assert_close(probe(shifted) - probe(features.float()), 1.0 / probe.std.expand(6, 5, 4))


def offset_features(
    n: int, offset: torch.Tensor, codes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 6, D) tokens: the shared ``offset`` (D,) plus 2 % of the class's code (D,) and noise."""
    labels = torch.arange(n) % len(codes)
    noise = torch.randn(n, 6, codes.shape[1], generator=generator)
    return offset + 0.02 * (codes[labels][:, None] + 0.5 * noise), labels


def test_standardizing_lets_a_probe_read_small_variations_around_an_offset():
    generator = torch.Generator().manual_seed(0)
    offset, codes = torch.randn(16, generator=generator), torch.randn(4, 16, generator=generator)
    train, train_labels = offset_features(256, offset, codes, generator)
    test, test_labels = offset_features(128, offset, codes, generator)
    for kind in ("attentive", "average"):
        accuracy = {}
        for standardize in (False, True):
            config = ProbeConfig(steps=100, standardize=standardize)
            probe = fit_probe(kind, train, train_labels, 4, config, seed=0)
            assert isinstance(probe, Standardized) == standardize
            with torch.no_grad():
                accuracy[standardize] = float((probe(test).argmax(-1) == test_labels).float().mean())
        assert accuracy[True] > 0.95, (kind, accuracy)
        assert accuracy[False] < 0.6, (kind, accuracy)  # chance is 0.25
