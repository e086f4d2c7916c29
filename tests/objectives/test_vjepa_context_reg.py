"""VICReg's variance and covariance terms on V-JEPA's context tokens (``task.ctx_std_coeff``,
``task.ctx_cov_coeff``, ``task.ctx_content_std_coeff``): against ``torch.cov`` per clip in float64,
a loop over positions, hand values, and the context tokens the model hands over being its
encoder's output at the context mask's positions."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models.outputs import JEPAOutput
from attnlab.objectives.vjepa import (
    context_content_cov_penalty,
    context_content_std_penalty,
    context_cov_penalty,
    context_std_penalty,
    jepa_terms,
)


def output_with(context: tuple[torch.Tensor, ...], index: tuple[torch.Tensor, ...] = ()) -> JEPAOutput:
    pred = torch.zeros(context[0].shape[0], 1, context[0].shape[2], dtype=context[0].dtype)
    return JEPAOutput(pred=pred, target=pred, splits=(1,), context=context, context_index=index)


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


def test_content_terms_equal_a_loop_over_positions():
    torch.manual_seed(0)
    z = torch.randn(4, 3, 5, dtype=torch.float64)  # (B, Nc, D)
    index = torch.tensor([[0, 2, 7], [2, 3, 7], [0, 7, 9], [1, 2, 4]])  # 1, 3, 4, 9 appear once
    kept = []
    for position in index.unique():
        at = index == position  # (B, Nc)
        if at.sum() > 1:
            kept.append(z[at] - z[at].mean(dim=0))
    std = torch.sqrt(torch.cat(kept).var(dim=0) + 1e-4)  # (D,), over the 7 tokens kept
    expect = torch.relu(1.0 - std).mean()
    z2, index2 = z[:, :2], index[:, :2]  # a second mask type: positions 0 and 2 appear more than once
    out = output_with((z, z2), (index, index2))
    second = torch.cat([z2[index2 == p] - z2[index2 == p].mean(0) for p in (0, 2)])
    expect_second = torch.relu(1.0 - torch.sqrt(second.var(dim=0) + 1e-4)).mean()
    torch.testing.assert_close(context_content_std_penalty(out), (expect + expect_second) / 2)
    covs = [torch.cov(torch.cat(kept).T), torch.cov(second.T)]  # (D, D) each, unbiased
    expect_cov = torch.stack([(c.pow(2).sum() - c.diagonal().pow(2).sum()) / 5 for c in covs]).mean()
    torch.testing.assert_close(context_content_cov_penalty(out), expect_cov)


def test_content_term_penalises_features_of_position_alone():
    index = torch.tensor([[0, 1, 2], [2, 0, 1]])
    positional = torch.eye(3)[index] * 10.0  # (2, 3, 3): a token's feature is its position's one-hot
    assert float(context_std_penalty(output_with((positional,)))) == 0.0  # spread over tokens: no penalty
    assert float(context_content_std_penalty(output_with((positional,), (index,)))) == pytest.approx(0.99)
    with pytest.raises(ConfigError, match="context_index"):
        context_content_std_penalty(output_with((positional,)))


def test_content_covariance_catches_what_the_variance_term_misses():
    """Every channel varies between clips (variance term met) along one shared direction."""
    index = torch.tensor([[0, 1], [0, 1], [1, 0], [1, 0]])
    one_direction = torch.tensor([3.0, -3.0, 3.0, -3.0]).view(4, 1, 1).expand(4, 2, 3)  # (B, Nc, D)
    out = output_with((one_direction,), (index,))
    assert float(context_content_std_penalty(out)) == 0.0
    assert float(context_content_cov_penalty(out)) > 1.0


def test_content_terms_are_zero_for_a_batch_of_one_clip():
    """Nothing varies between clips in a batch of one (a last validation batch, say): no NaN."""
    out = output_with((torch.randn(1, 4, 3),), (torch.tensor([[0, 1, 2, 3]]),))
    assert float(context_content_std_penalty(out)) == 0.0
    assert float(context_content_cov_penalty(out)) == 0.0
