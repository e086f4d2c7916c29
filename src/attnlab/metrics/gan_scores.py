"""IS-like and FID-like scores from a domain classifier's logits and features.

Inception Score (Salimans et al. 2016, arXiv:1606.03498): ``exp(E_x KL(p(y|x) || p(y)))``,
the mean and standard deviation over ``splits`` equal parts of the samples, as the reference
code (github.com/openai/improved-gan) does. Fréchet distance (FID: Heusel et al. 2017,
arXiv:1706.08500, github.com/bioinf-jku/TTUR) between Gaussians fitted to two feature sets:
``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, in float64, with the trace of the matrix
square root taken as the sum of the square roots of the eigenvalues of the symmetric
``S1^(1/2) S2 S1^(1/2)`` (the same eigenvalues as S1 S2; no complex parts to discard).
Here the logits and features come from :class:`attnlab.models.gan.domain_classifier.DomainClassifier`,
not Inception-v3, so the numbers are comparable between our runs only. Runs score FID-like with
torchmetrics' ``FrechetInceptionDistance`` (:class:`FIDLike`: the classifier's features are its
custom extractor's output); :func:`frechet_distance` is the independent float64 computation it is
tested against.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.errors import InputError


def inception_like_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over ``splits`` parts of ``exp(mean KL(p(y|x) || p(y)))``; logits (N, classes)."""
    if logits.dim() != 2 or not 1 <= splits <= len(logits):
        raise InputError(f"logits must be (N, classes) with N >= splits={splits}, got {tuple(logits.shape)}")
    scores = []
    for part in logits.double().chunk(splits):
        log_p = part.log_softmax(dim=1)  # (n, classes)
        log_marginal = log_p.exp().mean(dim=0).log()  # (classes,)
        kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)  # (n,)
        scores.append(kl.mean().exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(unbiased=False))


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    if features.dim() != 2 or len(features) < 2:
        raise InputError(f"features must be (N >= 2, D), got {tuple(features.shape)}")
    x = features.double()
    return x.mean(dim=0), torch.cov(x.T)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64."""
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise InputError(
            f"means (D,) and covariances (D, D) must match, got {tuple(mu1.shape)}, {tuple(sigma1.shape)}, "
            f"{tuple(mu2.shape)}, {tuple(sigma2.shape)}"
        )
    mu1, mu2, s1, s2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * trace_sqrt)


def frechet_feature_distance(features: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]) -> float:
    """FID-like: Fréchet distance of features (N, D) to reference (mean, covariance)."""
    return frechet_distance(*gaussian_stats(features), *reference)


class _Features(nn.Module):
    """torchmetrics' feature extractor when the features are already computed: passes them on."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim  # read by FrechetInceptionDistance instead of a trial forward pass

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FIDLike:
    """FID-like of feature sets (N, D) against fixed reference features, by torchmetrics'
    ``FrechetInceptionDistance`` (the reference's sums are kept between calls)."""

    def __init__(self, reference_features: torch.Tensor) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance

        if reference_features.dim() != 2 or len(reference_features) < 2:
            raise InputError(f"reference features must be (N >= 2, D), got {tuple(reference_features.shape)}")
        self.dim = reference_features.shape[1]
        self.metric = FrechetInceptionDistance(feature=_Features(self.dim), reset_real_features=False)
        self.metric.update(reference_features.double(), real=True)

    def __call__(self, features: torch.Tensor) -> float:
        if features.dim() != 2 or len(features) < 2 or features.shape[1] != self.dim:
            raise InputError(f"features must be (N >= 2, {self.dim}), got {tuple(features.shape)}")
        self.metric.reset()  # the generated side only (reset_real_features=False)
        self.metric.update(features.double(), real=False)
        return float(self.metric.compute())
