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

``ctx_content_std``: the same variance term on what varies between clips at one place. Why: the
variance over a clip's tokens is satisfied by features of position alone (a regularised run kept
rank 86 at 6000 steps by encoding where and when each token is, and lost its pixels), and the
predictor, given the target positions, predicts such targets most easily. Here each context token
has the mean of the batch's context tokens at its grid position subtracted (positions seen in one
clip only are left out), and ``mean(relu(1 - sqrt(var + 1e-4)))`` is taken over every remaining
token per channel: features of position alone score 1, the worst. ``ctx_content_cov``: the
covariance term on the same tokens, without which the variance term alone was met by a few
directions shared by every channel (effective rank 5 at 1500 steps, docs/vjepa.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError
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


def off_diagonal_penalty(centred: torch.Tensor) -> torch.Tensor:
    """(..., M, D) centred samples -> (...,): the squared off-diagonal entries of their covariance
    (unbiased, as VICReg's) summed and divided by D."""
    cov = centred.transpose(-1, -2) @ centred / (centred.shape[-2] - 1)  # (..., D, D)
    return (cov.pow(2).sum((-1, -2)) - cov.diagonal(dim1=-2, dim2=-1).pow(2).sum(-1)) / centred.shape[-1]


def context_cov_penalty(output: JEPAOutput) -> torch.Tensor:
    """VICReg's covariance term on each clip's context tokens, mean over clips and mask types."""
    centred = [z - z.mean(dim=1, keepdim=True) for z in output.context]  # (B, Nc, D) each
    return torch.stack([off_diagonal_penalty(c).mean() for c in centred]).mean()


def position_centred(z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, Nc, D) tokens at grid positions ``index`` (B, Nc) -> (M, D): each token minus the mean of
    the batch's tokens at its position, for the M tokens whose position holds tokens of > 1 clip."""
    flat, where = z.reshape(-1, z.shape[-1]), index.reshape(-1)  # (B * Nc, D), (B * Nc,)
    size = int(where.max()) + 1
    counts = torch.bincount(where, minlength=size)  # (P,)
    sums = flat.new_zeros(size, flat.shape[1]).index_add(0, where, flat)  # (P, D)
    centred = flat - (sums / counts.clamp_min(1).unsqueeze(1).to(flat.dtype))[where]
    return centred[counts[where] > 1]


def content_tokens(output: JEPAOutput) -> list[torch.Tensor]:
    """Each mask type's context tokens minus their position's batch mean, (M_i, D) each, for the mask
    types with M_i >= 2 (a batch of one clip has none: nothing varies between clips)."""
    if len(output.context_index) != len(output.context):
        raise ConfigError("ctx_content_* needs the context tokens' positions (JEPAOutput.context_index)")
    pairs = zip(output.context, output.context_index, strict=True)
    return [c for c in (position_centred(z, index) for z, index in pairs) if c.shape[0] >= 2]


def mean_or_zero(values: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(values).mean() if values else like.new_zeros(())


def context_content_std_penalty(output: JEPAOutput) -> torch.Tensor:
    """VICReg's variance term on the context tokens with each position's batch mean removed."""
    stds = [token_std(c.unsqueeze(0)) for c in content_tokens(output)]  # (1, D) each
    return mean_or_zero([F.relu(1.0 - std).mean() for std in stds], output.pred)


def context_content_cov_penalty(output: JEPAOutput) -> torch.Tensor:
    """VICReg's covariance term on the context tokens with each position's batch mean removed."""
    return mean_or_zero([off_diagonal_penalty(c) for c in content_tokens(output)], output.pred)


def jepa_terms(
    output: JEPAOutput,
    *,
    loss_exp: float = 1.0,
    reg_coeff: float = 0.0,
    ctx_std_coeff: float = 0.0,
    ctx_cov_coeff: float = 0.0,
    ctx_content_std_coeff: float = 0.0,
    ctx_content_cov_coeff: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Weighted terms: ``jepa`` (the prediction loss) and each regulariser whose weight is > 0."""
    terms = {"jepa": prediction_loss(output, loss_exp=loss_exp)}
    if reg_coeff > 0:
        terms["reg"] = reg_coeff * variance_penalty(output)
    if ctx_std_coeff > 0:
        terms["ctx_std"] = ctx_std_coeff * context_std_penalty(output)
    if ctx_cov_coeff > 0:
        terms["ctx_cov"] = ctx_cov_coeff * context_cov_penalty(output)
    if ctx_content_std_coeff > 0:
        terms["ctx_content_std"] = ctx_content_std_coeff * context_content_std_penalty(output)
    if ctx_content_cov_coeff > 0:
        terms["ctx_content_cov"] = ctx_content_cov_coeff * context_content_cov_penalty(output)
    return terms
