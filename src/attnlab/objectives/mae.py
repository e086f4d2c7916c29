"""MAE's reconstruction loss (He et al. 2022, arXiv:2111.06377, Sec. 3 "Reconstruction target").

As facebookresearch/mae ``MaskedAutoencoderViT.forward_loss``: the mean squared error per patch
(over its p*p*C pixel values), averaged over the **removed** patches only; the targets are the raw
pixels or, with ``norm_pix_loss``, each patch normalised by its own mean and unbiased std
(:meth:`attnlab.models.vit.mae.MAE.targets` builds them, so the loss needs only the output).
"""

from __future__ import annotations

import torch

from attnlab.models.vit.mae import MAEOutput


def reconstruction_loss(output: MAEOutput) -> torch.Tensor:
    """Mean over removed patches of the per-patch mean squared error."""
    per_patch = (output.pred - output.target).square().mean(dim=-1)  # (B, L)
    return (per_patch * output.mask).sum() / output.mask.sum()


def mae_terms(output: MAEOutput, *, weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Weighted terms: ``mae`` (the reconstruction loss)."""
    return {"mae": weight * reconstruction_loss(output)}
