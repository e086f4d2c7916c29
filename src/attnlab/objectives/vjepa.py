"""V-JEPA's feature-prediction loss as named terms (Bardes et al. 2024, arXiv:2404.08471, Eq. 1).

As facebookresearch/jepa ``app/vjepa/train.py``: for each mask type i,
``mean(|z_i - h_i| ** p) / p`` over batch, target tokens and channels (p = ``loss_exp``, 1 in
every official config: the L1 loss), averaged over the mask types. The targets h are the
layer-normalised target-encoder features (:meth:`attnlab.models.vjepa.vjepa.VJEPA.targets`).

``reg``: the official variance regulariser ``mean(relu(1 - s))``, s = the mean over mask types
of ``sqrt(var_tokens(z_i) + 1e-4)`` per sample and channel; its weight ``reg_coeff`` is 0 in every
official config, so it is logged but does not train unless asked.
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


def predictor_std(output: JEPAOutput) -> torch.Tensor:
    """(B, D) mean over mask types of the predictions' std over tokens (``pstd_z``)."""
    stds = [torch.sqrt(z.var(dim=1) + 1e-4) for z, _ in output.per_mask()]
    return torch.stack(stds).mean(0)


def variance_penalty(output: JEPAOutput) -> torch.Tensor:
    """``mean(relu(1 - pstd_z))``: positive while predictions collapse across tokens."""
    return F.relu(1.0 - predictor_std(output)).mean()


def jepa_terms(
    output: JEPAOutput, *, loss_exp: float = 1.0, reg_coeff: float = 0.0
) -> dict[str, torch.Tensor]:
    """Weighted terms: ``jepa`` (the prediction loss) and, when ``reg_coeff`` > 0, ``reg``."""
    terms = {"jepa": prediction_loss(output, loss_exp=loss_exp)}
    if reg_coeff > 0:
        terms["reg"] = reg_coeff * variance_penalty(output)
    return terms
