"""V-JEPA's feature-prediction loss as named terms (Bardes et al. 2024, arXiv:2404.08471, Eq. 1).

As facebookresearch/jepa ``app/vjepa/train.py``: for each mask type i,
``mean(|z_i - h_i| ** p) / p`` over batch, target tokens and channels (p = ``loss_exp``, 1 in
every official config: the L1 loss), averaged over the mask types. The targets h are the
layer-normalised target-encoder features (:meth:`attnlab.models.vjepa.vjepa.VJEPA.targets`).

``reg``: the official variance regulariser ``mean(relu(1 - s))``, s = the mean over mask types
of ``sqrt(var_tokens(z_i) + 1e-4)`` per sample and channel; its weight ``reg_coeff`` is 0 in every
official config, so it is logged but does not train unless asked.

``ctx_std`` and ``ctx_cov``: VICReg's variance and covariance terms (Bardes et al. 2022,
arXiv:2105.04906) on the context encoder's tokens of each clip, an ablation that is not in the
official code. Why: on moving-fmnist the target encoder's tokens lose rank as pre-training goes
on (docs/vjepa.md), and the official regulariser acts on the predictor's outputs, not on the
encoder whose EMA makes the targets. Per clip and mask type, over its context tokens:
``mean(relu(1 - sqrt(var + 1e-4)))`` over channels, and the squared off-diagonal entries of the
channels' covariance summed and divided by D; both averaged over clips and mask types.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.models.outputs import JEPAOutput


def prediction_loss(output: JEPAOutput, *, loss_exp: float = 1.0) -> torch.Tensor:
    """Mean over mask types of ``mean(|pred - target| ** loss_exp) / loss_exp``."""
    return torch.stack(
        [torch.mean((z - h).abs() ** loss_exp) / loss_exp for z, h in output.per_mask()]
    ).mean()


def token_std(z: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, D): each channel's std over the tokens, ``sqrt(var + 1e-4)`` as the official."""
    return torch.sqrt(z.var(dim=1) + 1e-4)


def predictor_std(output: JEPAOutput) -> torch.Tensor:
    """(B, D) mean over mask types of the predictions' std over tokens (``pstd_z``)."""
    return torch.stack([token_std(z) for z, _ in output.per_mask()]).mean(0)


def variance_penalty(output: JEPAOutput) -> torch.Tensor:
    """``mean(relu(1 - pstd_z))``: positive while predictions collapse across tokens."""
    return F.relu(1.0 - predictor_std(output)).mean()


def context_std_penalty(output: JEPAOutput) -> torch.Tensor:
    """VICReg's variance term on each clip's context tokens, mean over clips and mask types."""
    return torch.stack([F.relu(1.0 - token_std(z)).mean() for z in output.context]).mean()


def context_cov_penalty(output: JEPAOutput) -> torch.Tensor:
    """VICReg's covariance term on each clip's context tokens, mean over clips and mask types."""
    penalties = []
    for z in output.context:  # (B, Nc, D)
        centred = z - z.mean(dim=1, keepdim=True)
        cov = centred.transpose(1, 2) @ centred / (z.shape[1] - 1)  # (B, D, D)
        off_diagonal = cov.pow(2).sum((1, 2)) - cov.diagonal(dim1=1, dim2=2).pow(2).sum(1)  # (B,)
        penalties.append(off_diagonal.mean() / z.shape[2])
    return torch.stack(penalties).mean()


def jepa_terms(
    output: JEPAOutput,
    *,
    loss_exp: float = 1.0,
    reg_coeff: float = 0.0,
    ctx_std_coeff: float = 0.0,
    ctx_cov_coeff: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Weighted terms: ``jepa`` (the prediction loss) and each regulariser whose weight is > 0."""
    terms = {"jepa": prediction_loss(output, loss_exp=loss_exp)}
    if reg_coeff > 0:
        terms["reg"] = reg_coeff * variance_penalty(output)
    if ctx_std_coeff > 0:
        terms["ctx_std"] = ctx_std_coeff * context_std_penalty(output)
    if ctx_cov_coeff > 0:
        terms["ctx_cov"] = ctx_cov_coeff * context_cov_penalty(output)
    return terms
