"""VICReg's variance and covariance terms on V-JEPA's context tokens (``task.ctx_std_coeff``,
``task.ctx_cov_coeff``): against ``torch.cov`` per clip in float64, hand values, and the context
tokens the model hands over being its encoder's output."""

from __future__ import annotations

import pytest
import torch

from attnlab.models.outputs import JEPAOutput
from attnlab.objectives.vjepa import context_cov_penalty, context_std_penalty, jepa_terms


def output_with(context: tuple[torch.Tensor, ...]) -> JEPAOutput:
    pred = torch.zeros(context[0].shape[0], 1, context[0].shape[2], dtype=context[0].dtype)
    return JEPAOutput(pred=pred, target=pred, splits=(1,), context=context)


def test_covariance_term_equals_torch_cov_per_clip():
    torch.manual_seed(0)
    context = (torch.randn(3, 7, 5, dtype=torch.float64), 2.0 * torch.randn(3, 4, 5, dtype=torch.float64))
    expect = []
    for z in context:
        per_clip = []
        for clip in z:  # (Nc, D)
            cov = torch.cov(clip.T)  # (D, D), unbiased as VICReg's
            per_clip.append((cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / z.shape[2])
        expect.append(torch.stack(per_clip).mean())
    torch.testing.assert_close(context_cov_penalty(output_with(context)), torch.stack(expect).mean())


def test_hand_values():
    # two tokens (1, 1) and (-1, -1): variances 2, covariance 2 -> off-diagonal 2 * 2^2 / D = 4
    together = torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]])
    assert float(context_cov_penalty(output_with((together,)))) == pytest.approx(4.0)
    assert float(context_std_penalty(output_with((together,)))) == 0.0  # std sqrt(2) > 1
    # a collapsed clip: every token alike -> std sqrt(1e-4) = 0.01, penalty 0.99; no covariance
    collapsed = torch.ones(2, 6, 3)
    assert float(context_std_penalty(output_with((collapsed,)))) == pytest.approx(0.99)
    assert float(context_cov_penalty(output_with((collapsed,)))) == 0.0


def test_terms_are_weighted_and_absent_at_zero():
    torch.manual_seed(0)
    out = output_with((torch.randn(2, 5, 4),))
    assert set(jepa_terms(out)) == {"jepa"}
    terms = jepa_terms(out, ctx_std_coeff=2.0, ctx_cov_coeff=0.5)
    torch.testing.assert_close(terms["ctx_std"], 2.0 * context_std_penalty(out))
    torch.testing.assert_close(terms["ctx_cov"], 0.5 * context_cov_penalty(out))
