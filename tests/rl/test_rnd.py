"""RND's statistics (observation normalisation, intrinsic-return filter) and transition-RND's
queue against hand computations."""

import statistics

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.rl.rnd import (
    RewardForwardFilter,
    RunningMeanStd,
    TransitionQueue,
    normalise_intrinsic,
    queue_input,
)

PRIOR = 1e-4  # RunningMeanStd's initial count (mean 0, var 1), as baselines


def test_running_mean_std_equals_the_pooled_moments_of_all_batches_and_the_prior():
    a = torch.tensor([[1.0, -2.0], [3.0, 0.0], [5.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([[-1.0, 2.0], [7.0, 6.0]], dtype=torch.float64)
    stats = RunningMeanStd((2,))
    stats.update(a)
    stats.update(b)
    x = torch.cat([a, b])
    n = x.shape[0] + PRIOR
    mean = x.sum(0) / n
    m2 = PRIOR * (1.0 + mean.square()) + (x - mean).square().sum(0)
    assert torch.allclose(stats.mean, mean, atol=1e-12)
    assert torch.allclose(stats.var, m2 / n, atol=1e-12)
    z = stats.normalise(torch.tensor([[100.0, -100.0]]), clip=5.0)
    assert z.tolist() == [[5.0, -5.0]]


def test_intrinsic_rewards_are_divided_by_the_std_of_returns_filtered_along_time():
    rewards = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)  # (T=3, N=2)
    gamma = 0.5
    # the filter runs along time, one per environment:
    # env 0: 1, 0.5 * 1 + 3 = 3.5, 0.5 * 3.5 + 5 = 6.75; env 1: 2, 0.5 * 2 + 4 = 5, 0.5 * 5 + 6 = 8.5
    filtered = [1.0, 2.0, 3.5, 5.0, 6.75, 8.5]
    mean, var = statistics.fmean(filtered), statistics.pvariance(filtered)
    n = 6 + PRIOR
    merged_var = (1.0 * PRIOR + var * 6 + mean**2 * PRIOR * 6 / n) / n
    forward, stats = RewardForwardFilter(gamma), RunningMeanStd()
    out = normalise_intrinsic(rewards, forward, stats)
    assert float(stats.var) == pytest.approx(merged_var, rel=1e-12)
    assert torch.allclose(out, rewards / merged_var**0.5, atol=1e-12)
    # the filter goes on in the next rollout (non-episodic): 0.5 * 6.75 + 1, 0.5 * 8.5 + 1
    normalise_intrinsic(torch.ones(1, 2, dtype=torch.float64), forward, stats)
    assert forward.returns is not None and forward.returns.tolist() == [4.375, 5.25]
    # CleanRL issue 360: filtering the transpose (over environments) gives other returns
    transposed = RewardForwardFilter(gamma)
    wrong = [transposed.update(row).tolist() for row in rewards.T]  # [[1, 3, 5], [2.5, 5.5, 8.5]]
    assert sorted(v for row in wrong for v in row) != sorted(filtered)


def test_transition_queue_forgets_the_oldest_pushes_the_newest_and_resets_to_zeros():
    queue = TransitionQueue(2, num_envs=2, frame_shape=(1,), dtype=torch.float32)
    frames, valid = queue.push(torch.tensor([[1.0], [10.0]]))
    assert frames[:, :, 0].tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 10.0]]
    assert valid.tolist() == [[False, False, True], [False, False, True]]
    queue.push(torch.tensor([[2.0], [20.0]]))
    frames, valid = queue.push(torch.tensor([[3.0], [30.0]]))
    assert frames[:, :, 0].tolist() == [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]
    frames, _ = queue.push(torch.tensor([[4.0], [40.0]]))
    assert frames[:, :, 0].tolist() == [[2.0, 3.0, 4.0], [20.0, 30.0, 40.0]]  # 1 and 10 forgotten
    queue.reset(torch.tensor([True, False]))  # environment 0's episode ended
    frames, valid = queue.push(torch.tensor([[5.0], [0.0]]), only=torch.tensor([True, False]))
    assert frames[:, :, 0].tolist() == [[0.0, 0.0, 5.0], [20.0, 30.0, 40.0]]
    assert valid.tolist() == [[False, False, True], [True, True, True]]


def test_queue_input_normalises_frames_and_keeps_empty_slots_at_zero():
    stats = RunningMeanStd((1,))
    stats.mean, stats.var = torch.tensor([2.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
    frames = torch.tensor([[[9.0], [4.0], [40.0]]])  # (B=1, n+1=3, 1)
    valid = torch.tensor([[False, True, True]])
    assert queue_input(frames, valid, stats, clip=5.0)[0, :, 0].tolist() == [0.0, 1.0, 5.0]


def test_a_negative_transition_length_is_a_one_line_error():
    with pytest.raises(ConfigError, match="transition length n must be >= 0"):
        TransitionQueue(-1, num_envs=1, frame_shape=(1,), dtype=torch.float32)
