"""DQN's TD loss against hand-computed targets; the replay buffer and the epsilon schedule."""

import numpy as np
import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.dqn import td_loss, td_target
from attnlab.rl.dqn import DQNConfig, epsilon_at
from attnlab.rl.replay import ReplayBuffer


def test_td_target_bootstraps_unless_terminated():
    next_q = torch.tensor([[1.0, 3.0], [2.0, -1.0]])
    y = td_target(torch.tensor([1.0, 0.5]), torch.tensor([False, True]), next_q, gamma=0.9)
    assert torch.allclose(y, torch.tensor([1.0 + 0.9 * 3.0, 0.5]))


def test_double_q_lets_the_online_network_pick_the_action():
    next_q = torch.tensor([[1.0, 3.0]])
    online = torch.tensor([[5.0, 0.0]])  # picks action 0, which the target values at 1
    y = td_target(torch.tensor([0.0]), torch.tensor([False]), next_q, gamma=1.0, online_next_q_values=online)
    assert y.item() == 1.0


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_td_loss_matches_a_float64_computation(kind: str):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    next_q = torch.randn(8, 3, generator=g, dtype=torch.float64)
    actions = torch.randint(3, (8,), generator=g)
    rewards = torch.randn(8, generator=g, dtype=torch.float64)
    terminated = torch.rand(8, generator=g) < 0.3
    out = td_loss(q, actions, rewards, terminated, next_q, gamma=0.99, kind=kind)
    target = rewards + 0.99 * (~terminated).double() * next_q.max(1).values
    diff = q[torch.arange(8), actions] - target
    expected = (
        diff.square().mean()
        if kind == "mse"
        else torch.where(diff.abs() < 1, 0.5 * diff.square(), diff.abs() - 0.5).mean()
    )
    assert torch.allclose(out.total, expected)
    out.total.backward()
    assert q.grad is not None and (q.grad != 0).sum() <= 8  # only the actions taken get a gradient
    assert not out.target.requires_grad


def test_td_loss_shape_errors_are_one_line():
    with pytest.raises(InputError, match=r"actions must be \(B,\)"):
        td_loss(
            torch.zeros(4, 2),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(4),
            torch.zeros(4),
            torch.zeros(4, 2),
            gamma=0.9,
        )
    with pytest.raises(InputError, match="int64"):
        td_loss(
            torch.zeros(4, 2), torch.zeros(4), torch.zeros(4), torch.zeros(4), torch.zeros(4, 2), gamma=0.9
        )


def test_replay_buffer_wraps_and_round_trips():
    buffer = ReplayBuffer(capacity=3, obs_dim=2)
    for i in range(5):
        buffer.add(np.full(2, i, dtype=np.float32), i % 2, float(i), np.full(2, i + 1), i == 4)
    assert len(buffer) == 3 and buffer.pos == 2
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0]  # the oldest two were overwritten
    copy = ReplayBuffer(capacity=3, obs_dim=2)
    copy.load_state_dict(buffer.state_dict())
    a = buffer.sample(16, np.random.default_rng(0))
    b = copy.sample(16, np.random.default_rng(0))
    for name in vars(a):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_epsilon_decays_linearly_then_stays():
    cfg = DQNConfig(start_epsilon=1.0, end_epsilon=0.1, exploration_fraction=0.5)
    assert epsilon_at(0, cfg, 1000) == 1.0
    assert epsilon_at(250, cfg, 1000) == pytest.approx(0.55)
    assert epsilon_at(500, cfg, 1000) == pytest.approx(0.1)
    assert epsilon_at(900, cfg, 1000) == pytest.approx(0.1)
