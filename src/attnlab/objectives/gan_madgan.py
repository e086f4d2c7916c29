"""MAD-GAN's losses (Ghosh et al. 2018, arXiv:1704.02906; github.com/rishabhd786/MAD-GAN).

The discriminator has k + 1 softmax outputs: class i < k = "made by generator i", class k =
"real". It minimises the cross-entropy of real images towards class k and of generator i's
images towards class i (the paper's Eq. 3, the k + 1 class objective). Each generator is
trained towards "real": ``CE(D(G_i(z)), k)``, the non-saturating form that the official code
uses. With k = 1 these are DCGAN's binary losses written with two logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import InputError


def _check(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> int:
    k = fake_logits.shape[1] if fake_logits.dim() == 3 else -1
    if k < 1 or fake_logits.shape[2] != k + 1 or real_logits.dim() != 2 or real_logits.shape[1] != k + 1:
        raise InputError(
            f"logits must be real (B, k+1) and fake (B, k, k+1), got {tuple(real_logits.shape)} "
            f"and {tuple(fake_logits.shape)}"
        )
    return k


def discriminator_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """``real``: CE of real images towards class k; ``fake``: CE of G_i's images towards class i,
    a mean over images and generators. ``real_logits`` (B, k+1), ``fake_logits`` (B, k, k+1)."""
    k = _check(real_logits, fake_logits)
    real_target = torch.full((len(real_logits),), k, device=real_logits.device)
    fake_target = torch.arange(k, device=fake_logits.device).expand(len(fake_logits), k)  # (B, k)
    return {
        "real": F.cross_entropy(real_logits, real_target),
        "fake": F.cross_entropy(fake_logits.flatten(0, 1), fake_target.flatten()),
    }


def towards_real(fake_logits: torch.Tensor) -> torch.Tensor:
    """Per generator, the mean CE of its images towards "real" (class k): (k,) from (B, k, k+1)."""
    if fake_logits.dim() != 3 or fake_logits.shape[2] != fake_logits.shape[1] + 1:
        raise InputError(f"fake logits must be (B, k, k+1), got {tuple(fake_logits.shape)}")
    k = fake_logits.shape[1]
    return -fake_logits.log_softmax(dim=-1)[..., k].mean(dim=0)  # (k,)


def generator_terms(fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """``g{i}/adv``: generator i's CE towards "real"; the generators' loss is their sum."""
    return {f"g{i}/adv": value for i, value in enumerate(towards_real(fake_logits))}
