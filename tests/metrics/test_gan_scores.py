"""IS-like and Fréchet distance against hand values, closed forms and scipy's matrix square root."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from attnlab.errors import InputError
from attnlab.metrics.gan_scores import (
    FIDLike,
    frechet_distance,
    frechet_feature_distance,
    gaussian_stats,
    inception_like_score,
)


def test_inception_like_hand_values():
    confident = torch.eye(10).repeat(3, 1) * 50  # every class equally often, each image certain
    mean, std = inception_like_score(confident, splits=3)
    assert mean == pytest.approx(10.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    one_class = torch.zeros(30, 10)
    one_class[:, 4] = 50  # one image over and over: no diversity
    assert inception_like_score(one_class, splits=3)[0] == pytest.approx(1.0, abs=1e-6)
    # two images: p = (0.75, 0.25) and (0.25, 0.75); marginal (0.5, 0.5)
    logits = torch.tensor([[math.log(3), 0.0], [0.0, math.log(3)]], dtype=torch.float64)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert inception_like_score(logits, splits=1)[0] == pytest.approx(math.exp(kl), rel=1e-9)


def _scipy_fid(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_equals_scipy_on_random_covariances():
    rng = np.random.default_rng(0)
    for d in (1, 4, 16):
        a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        ours = frechet_distance(*(torch.from_numpy(x) for x in (mu1, s1, mu2, s2)))
        assert ours == pytest.approx(_scipy_fid(mu1, s1, mu2, s2), rel=1e-8, abs=1e-9)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + sum(float(a + b - 2 * (a * b).sqrt()) for a, b in zip(v1, v2, strict=True))
    assert frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2)) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(mu1, torch.diag(v1), mu1, torch.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_sample_frechet_converges_to_the_known_distance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    y = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor(
        [1.0, 0.0, 0.0], dtype=torch.float64
    )
    expected = 1.0 + 3 * (1 + 4 - 2 * 2)  # ||mu||^2 + sum (1 + 4 - 2 sqrt(4))
    assert frechet_feature_distance(y, gaussian_stats(x)) == pytest.approx(expected, rel=0.05)


def test_torchmetrics_fid_equals_the_float64_computation_and_keeps_the_reference():
    """FIDLike (torchmetrics' FrechetInceptionDistance over given features) against our float64
    eigenvalue form, on correlated Gaussians; a second call sees only its own generated features."""
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(5000, 16, generator=g) * 2 + 1
    mixing = torch.randn(16, 16, generator=g) * 0.4
    fid = FIDLike(reference)
    for n in (3000, 500):
        fake = torch.randn(n, 16, generator=g) @ mixing
        expected = frechet_feature_distance(fake, gaussian_stats(reference))
        assert fid(fake) == pytest.approx(expected, rel=1e-9)
    assert fid(reference) == pytest.approx(0.0, abs=1e-6)


def test_torchmetrics_fid_has_the_closed_form_on_large_samples():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    y = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + torch.tensor([1.0, 0.0, 0.0])
    assert FIDLike(x)(y) == pytest.approx(1.0 + 3 * (1 + 4 - 2 * 2), rel=0.05)


def test_bad_inputs_are_one_line():
    with pytest.raises(InputError, match="logits must be"):
        inception_like_score(torch.zeros(3, 10), splits=10)
    with pytest.raises(InputError, match="must match"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.raises(InputError, match=r"must be \(N >= 2, 4\)"):
        FIDLike(torch.randn(10, 4))(torch.randn(10, 3))
