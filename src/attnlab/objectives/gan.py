"""GAN losses as named terms (Goodfellow et al. 2014, arXiv:1406.2661), from discriminator logits.

Discriminator: binary cross-entropy of real points as real and generated ones as fake,
``softplus(-D(x)) + softplus(D(G(z)))``. Generator: the non-saturating loss of the paper's
Sec. 3, ``softplus(-D(G(z)))`` (= -log sigmoid(D(G(z)))), which keeps gradients alive while
the discriminator wins, instead of minimising ``log(1 - D(G(z)))``. Optionally the R1
penalty of Mescheder et al. 2018 (arXiv:1801.04406), ``gamma / 2 * E ||grad_x D(x)||^2`` on
real points, which damps the discriminator's oscillation around the data: the term that
lets the toy GAN settle on the modes within a CPU minute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """``real``: -log D(x) and ``fake``: -log(1 - D(G(z))), each a mean over its points."""
    return {"real": F.softplus(-real_logits).mean(), "fake": F.softplus(fake_logits).mean()}


def generator_terms(fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """``adv``: the non-saturating -log D(G(z)), a mean over the generated points."""
    return {"adv": F.softplus(-fake_logits).mean()}


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``1/2 * mean ||d D(x) / d x||^2`` over real points; ``real`` must require grad (create_graph)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)  # (N, D)
    return 0.5 * grad.square().flatten(1).sum(1).mean()
