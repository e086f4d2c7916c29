"""PPO's losses and GAE against hand computations."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.ppo import gae, intrinsic_reward, policy_loss, rnd_predictor_loss, value_loss


def test_gae_matches_a_hand_computation_with_an_episode_end():
    # one environment, 3 steps; the episode ends after step 1 (so step 1 does not bootstrap)
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)
    dones = torch.tensor([[False], [True], [False]])
    next_value = torch.tensor([2.0], dtype=torch.float64)
    g, lam = 0.9, 0.8
    # deltas by hand
    d2 = 3.0 + g * 2.0 - 1.5  # 3.3
    d1 = 2.0 + 0.0 - 1.0  # 1.0: the next state belongs to a new episode
    d0 = 1.0 + g * 1.0 - 0.5  # 1.4
    a2 = d2
    a1 = d1  # the carry is cut by the episode end
    a0 = d0 + g * lam * a1  # 1.4 + 0.72
    adv, ret = gae(rewards, values, dones, next_value, gamma=g, lam=lam)
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2], abs=1e-12)
    assert ret[:, 0].tolist() == pytest.approx([a0 + 0.5, a1 + 1.0, a2 + 1.5], abs=1e-12)


def test_non_episodic_gae_ignores_episode_ends():
    rewards = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [1.0]], dtype=torch.float64)
    dones = torch.tensor([[True], [True]])
    next_value = torch.tensor([2.0], dtype=torch.float64)
    g, lam = 0.5, 1.0
    d1 = 2.0 + g * 2.0 - 1.0  # 2.0
    d0 = 1.0 + g * 1.0 - 0.5  # 1.0
    adv, _ = gae(rewards, values, dones, next_value, gamma=g, lam=lam, episodic=False)
    assert adv[:, 0].tolist() == pytest.approx([d0 + g * lam * d1, d1], abs=1e-12)
    episodic, _ = gae(rewards, values, dones, next_value, gamma=g, lam=lam)
    assert episodic[:, 0].tolist() == pytest.approx([1.0 - 0.5, 2.0 - 1.0], abs=1e-12)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(InputError, match="next_value must be"):
        gae(
            torch.zeros(3, 2),
            torch.zeros(3, 2),
            torch.zeros(3, 2, dtype=torch.bool),
            torch.zeros(3),
            gamma=0.9,
            lam=0.9,
        )


def test_clipped_surrogate_matches_hand_values():
    old = torch.zeros(3, dtype=torch.float64)
    new = torch.log(torch.tensor([1.5, 0.5, 1.1], dtype=torch.float64))  # ratios 1.5, 0.5, 1.1
    adv = torch.tensor([1.0, 1.0, -2.0], dtype=torch.float64)
    # per sample max(-A r, -A clip(r, 0.8, 1.2)): max(-1.5, -1.2) = -1.2; max(-0.5, -0.8) = -0.5;
    # max(2.2, 2.2) = 2.2
    expected = (-1.2 - 0.5 + 2.2) / 3
    assert float(policy_loss(new, old, adv, clip=0.2)) == pytest.approx(expected, abs=1e-12)


def test_value_clipping_takes_the_pessimistic_error():
    old = torch.tensor([0.0, 0.0], dtype=torch.float64)
    new = torch.tensor([1.0, 0.1], dtype=torch.float64)
    ret = torch.tensor([1.0, -1.0], dtype=torch.float64)
    # sample 0: unclipped (1 - 1)^2 = 0, clipped (0.2 - 1)^2 = 0.64 -> 0.64
    # sample 1: unclipped (0.1 + 1)^2 = 1.21, clipped (0.1 + 1)^2 = 1.21 -> 1.21
    assert float(value_loss(new, old, ret, clip=0.2)) == pytest.approx(0.5 * (0.64 + 1.21) / 2, abs=1e-12)
    assert float(value_loss(new, old, ret, clip=None)) == pytest.approx(0.5 * (0.0 + 1.21) / 2, abs=1e-12)


def test_rnd_terms_use_the_mean_feature_error_and_the_kept_samples_only():
    predicted = torch.tensor([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])
    target = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    assert intrinsic_reward(predicted, target).tolist() == [2.5, 1.0, 2.0]
    keep = torch.tensor([True, False, True])
    assert float(rnd_predictor_loss(predicted, target, keep)) == pytest.approx((2.5 + 2.0) / 2)
    assert float(rnd_predictor_loss(predicted, target, torch.zeros(3, dtype=torch.bool))) == 0.0
    everything = torch.ones(3, dtype=torch.bool)
    assert float(rnd_predictor_loss(predicted, target, everything)) == pytest.approx(5.5 / 3, rel=1e-6)
