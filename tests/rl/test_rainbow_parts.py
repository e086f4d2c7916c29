"""Rainbow's parts in the DQN runner, each against an independent computation: the categorical
projection against a float64 loop over atoms (Bellemare et al. 2017, Algorithm 1), prioritised
replay's tree and draws against numpy sums and the proportional law, n-step transitions against
returns summed by hand over recorded episodes."""

import numpy as np
import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.objectives.categorical_dqn import categorical_loss, project_distribution
from attnlab.objectives.dqn import td_loss
from attnlab.rl.nstep import NStepQueue
from attnlab.rl.prioritized import PrioritySampler
from attnlab.rl.replay import ReplayBuffer


def projection_by_loop(probs: np.ndarray, reward: float, discount: float, support: np.ndarray) -> np.ndarray:
    """Algorithm 1 of the C51 paper for one transition, atom by atom, in float64; an atom that lands
    exactly on the support gives it all its mass."""
    v_min, v_max, atoms = support[0], support[-1], len(support)
    delta = (v_max - v_min) / (atoms - 1)
    out = np.zeros(atoms)
    for j in range(atoms):
        tz = min(max(reward + discount * support[j], v_min), v_max)
        b = (tz - v_min) / delta
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            out[lo] += probs[j]
        else:
            out[lo] += probs[j] * (hi - b)
            out[hi] += probs[j] * (b - lo)
    return out


def test_the_projection_equals_the_papers_loop_atom_by_atom():
    rng = np.random.default_rng(0)
    support = np.linspace(-10, 10, 51)
    probs = rng.dirichlet(np.ones(51), size=6)
    # rewards and discounts that shift inside the support, past both ends, onto atoms exactly, and a terminal
    rewards = np.array([0.3, 9.5, -12.0, 0.4, 1.0, -0.77])
    discounts = np.array([0.99, 0.97, 0.9, 1.0, 0.0, 0.99**3])
    got = project_distribution(
        torch.from_numpy(probs),
        torch.from_numpy(rewards),
        torch.from_numpy(discounts),
        torch.from_numpy(support),
    ).numpy()
    for b in range(6):
        np.testing.assert_allclose(
            got[b], projection_by_loop(probs[b], rewards[b], discounts[b], support), atol=1e-12
        )
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_a_terminal_transition_puts_all_mass_on_the_reward():
    support = torch.linspace(-10, 10, 51, dtype=torch.float64)  # atoms 0.4 apart
    probs = torch.full((1, 51), 1 / 51, dtype=torch.float64)
    rewards, discounts = torch.tensor([1.1], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    out = project_distribution(probs, rewards, discounts, support)[0]
    # 1.1 lies between atoms 0.8 (index 27) and 1.2 (index 28), three quarters of the way
    assert out[27].item() == pytest.approx(0.25) and out[28].item() == pytest.approx(0.75)
    assert out.sum().item() == pytest.approx(1.0) and (out > 0).sum() == 2


def test_the_categorical_loss_is_the_cross_entropy_with_the_projected_target():
    torch.manual_seed(0)
    support = torch.linspace(-2, 2, 5, dtype=torch.float64)
    log_probs = torch.randn(3, 2, 5, dtype=torch.float64).log_softmax(-1).requires_grad_(True)
    next_probs = torch.randn(3, 2, 5, dtype=torch.float64).softmax(-1)
    actions, rewards = torch.tensor([0, 1, 1]), torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
    terminated, horizons = torch.tensor([False, True, False]), torch.tensor([1, 3, 2])
    online_next = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    weights = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    loss = categorical_loss(
        log_probs,
        actions,
        rewards,
        terminated,
        next_probs,
        support,
        gamma=0.9,
        online_next_q_values=online_next,
        horizons=horizons,
        weights=weights,
    )
    for b, (a, star, discount) in enumerate([(0, 1, 0.9), (1, 0, 0.0), (1, 1, 0.81)]):
        m = projection_by_loop(next_probs[b, star].numpy(), float(rewards[b]), discount, support.numpy())
        np.testing.assert_allclose(loss.target[b].numpy(), m, atol=1e-12)
        assert loss.each[b].item() == pytest.approx(-(m * log_probs[b, a].detach().numpy()).sum())
    assert loss.total.item() == pytest.approx((weights * loss.each).mean().item())
    loss.total.backward()
    assert log_probs.grad is not None and log_probs.grad[:, :, :].abs().sum() > 0
    assert log_probs.grad[0, 1].abs().sum() == 0  # only the taken action learns


def test_without_double_q_the_target_networks_own_best_action_is_used():
    support = torch.tensor([0.0, 1.0])
    next_probs = torch.tensor([[[1.0, 0.0], [0.2, 0.8]]])  # action 1 has the larger mean
    loss = categorical_loss(
        torch.zeros(1, 2, 2),
        torch.tensor([0]),
        torch.tensor([0.0]),
        torch.tensor([False]),
        next_probs,
        support,
        gamma=1.0,
    )
    torch.testing.assert_close(loss.target, torch.tensor([[0.2, 0.8]]))


def test_the_categorical_loss_refuses_mismatched_shapes():
    with pytest.raises(InputError, match=r"\(B, A, Z\)"):
        categorical_loss(
            torch.zeros(1, 2, 3),
            torch.tensor([0]),
            torch.zeros(1),
            torch.tensor([False]),
            torch.zeros(1, 2, 4),
            torch.zeros(3),
            gamma=0.9,
        )


def test_td_loss_discounts_n_step_bootstraps_and_weights_each_transition():
    q = torch.tensor([[1.0, 2.0], [0.0, 3.0]], requires_grad=True)
    next_q = torch.tensor([[4.0, 1.0], [2.0, 5.0]])
    loss = td_loss(
        q,
        torch.tensor([1, 0]),
        torch.tensor([1.0, 0.5]),
        torch.tensor([False, False]),
        next_q,
        gamma=0.5,
        horizons=torch.tensor([1, 3]),
        weights=torch.tensor([1.0, 0.5]),
        kind="mse",
    )
    # targets: 1 + 0.5 * 4 = 3 and 0.5 + 0.125 * 5 = 1.125; errors 1 and 1.125
    torch.testing.assert_close(loss.target, torch.tensor([3.0, 1.125]))
    torch.testing.assert_close(loss.errors, torch.tensor([1.0, 1.125]))
    assert loss.total.item() == pytest.approx((1.0 * 1.0**2 + 0.5 * 1.125**2) / 2)


def test_the_sum_tree_holds_the_sums_of_its_leaves():
    rng = np.random.default_rng(1)
    sampler = PrioritySampler(13, alpha=0.6)  # not a power of two
    for slot in range(13):
        sampler.add(slot)
    for _ in range(20):
        slots = torch.from_numpy(rng.choice(13, size=5, replace=False))
        sampler.update(slots, torch.from_numpy(rng.random(5) * 3))
    leaves = sampler.tree[sampler.leaves :]
    for node in range(1, sampler.leaves):  # every inner node = the sum of the leaves below it
        depth = int(np.log2(node))
        width = sampler.leaves >> depth
        first = (node - (1 << depth)) * width
        assert sampler.tree[node] == pytest.approx(leaves[first : first + width].sum(), rel=1e-12)
    assert sampler.total == pytest.approx(sampler.priorities().sum())


def test_draws_follow_the_priorities_and_the_weights_their_formula():
    sampler = PrioritySampler(8, alpha=0.5)
    for slot in range(6):  # six filled slots of eight
        sampler.add(slot)
    losses = torch.tensor([0.0, 1.0, 4.0, 9.0, 16.0, 0.25], dtype=torch.float64)
    sampler.update(torch.arange(6), losses)
    p_alpha = (losses.numpy() + 1e-6) ** 0.5
    expected = p_alpha / p_alpha.sum()
    rng = np.random.default_rng(2)
    counts = np.zeros(6)
    for _ in range(2000):
        slots, weights = sampler.sample(16, 6, beta=0.4, rng=rng)
        counts += np.bincount(slots.numpy(), minlength=6)
        w = (6 * expected[slots.numpy()]) ** -0.4
        np.testing.assert_allclose(weights.numpy(), w / w.max(), rtol=1e-5)
    freq = counts / counts.sum()
    # 32,000 stratified draws: a binomial sd is at most 0.003
    np.testing.assert_allclose(freq, expected, atol=0.01)
    assert counts[0] < 50  # a zero loss keeps only eps


def test_each_draw_falls_in_its_own_segment_of_the_total():
    sampler = PrioritySampler(4, alpha=1.0)
    for slot in range(4):
        sampler.add(slot)
    sampler.update(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    slots, _ = sampler.sample(4, 4, beta=1.0, rng=np.random.default_rng(0))
    assert slots.tolist() == [0, 1, 2, 3]  # equal priorities, four segments: one draw per slot


def test_new_transitions_get_the_largest_priority_seen():
    sampler = PrioritySampler(4, alpha=1.0)
    sampler.add(0)
    sampler.update(torch.tensor([0]), torch.tensor([5.0]))
    sampler.add(1)
    assert sampler.priorities()[1] == pytest.approx(5.0 + 1e-6)


def test_the_priorities_survive_a_checkpoint_and_refuse_another_size():
    a = PrioritySampler(5, alpha=0.5)
    for slot in range(5):
        a.add(slot)
    a.update(torch.arange(5), torch.arange(5.0))
    b = PrioritySampler(5, alpha=0.5)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.tree, b.tree)
    assert a.max_priority == b.max_priority
    with pytest.raises(ConfigError, match="priorities cover 5 slots"):
        PrioritySampler(6, alpha=0.5).load_state_dict(a.state_dict())


def nstep_by_hand(
    rewards: list[float], n: int, gamma: float, terminated: bool
) -> list[tuple[float, int, int, bool]]:
    """(return, index of s', horizon, terminated at s') for every step of one recorded episode."""
    steps, out = len(rewards), []
    for t in range(steps):
        h = min(n, steps - t)
        ret = sum(gamma**k * rewards[t + k] for k in range(h))
        out.append((ret, t + h, h, terminated and t + h == steps))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("ending", ["terminated", "truncated"])
def test_n_step_transitions_equal_returns_summed_by_hand(n: int, ending: str):
    rng = np.random.default_rng(n)
    queue, gamma = NStepQueue(n, 0.9), 0.9
    for length in (1, 2, 4, 7):  # episodes one after another through the same queue
        observations = [np.array([float(i)]) for i in range(length + 1)]
        rewards = rng.normal(size=length).tolist()
        got = []
        for t in range(length):
            last = t == length - 1
            got += queue.push(
                observations[t],
                t % 3,
                rewards[t],
                observations[t + 1],
                last and ending == "terminated",
                last and ending == "truncated",
            )
        expected = nstep_by_hand(rewards, n, gamma, ending == "terminated")
        assert len(got) == length and not queue.steps
        for t, (tr, (ret, nxt, h, term)) in enumerate(zip(got, expected, strict=True)):
            assert tr.obs[0] == t and tr.action == t % 3
            assert tr.reward == pytest.approx(ret, rel=1e-12) and tr.next_obs[0] == nxt
            assert tr.horizon == h and tr.terminated == term


def test_the_buffer_keeps_horizons_and_reads_checkpoints_without_them():
    buffer = ReplayBuffer(4, 1)
    slot = buffer.add(np.zeros(1), 0, 1.0, np.ones(1), False, horizon=3)
    assert slot == 0 and buffer.gather(torch.tensor([0])).horizons.tolist() == [3]
    state = buffer.state_dict()
    del state["horizons"]  # written before n-step returns
    again = ReplayBuffer(4, 1)
    again.load_state_dict(state)
    assert again.gather(torch.tensor([0])).horizons.tolist() == [1]
