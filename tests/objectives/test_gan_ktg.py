"""Knowledge transfer graph: gates, attention-map transfer against float64 loops, gated edge sums."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.gan_ktg import (
    KTGraph,
    edge_names,
    generator_terms,
    make_gate,
    transfer_loss,
)
from attnlab.objectives.gan_madgan import towards_real


@pytest.mark.parametrize(
    "name, weights",
    [
        ("through", [1.0, 1.0, 1.0]),
        ("cutoff", [0.0, 0.0, 0.0]),
        ("positive-linear", [0.0, 0.25, 1.0]),
        ("negative-linear", [1.0, 0.75, 0.0]),
    ],
)
def test_gates_over_progress(name, weights):
    gate = make_gate(name)
    loss = torch.tensor(2.0)
    assert [float(gate(loss, p)) for p in (0.0, 0.25, 1.0)] == [2 * w for w in weights]


def test_unknown_gate_and_bad_progress_are_one_line():
    with pytest.raises(
        InputError,
        match=r"^unknown gate 'positive' on edge '1->0' \(did you mean 'positive-linear'\?\); gates: ",
    ):
        KTGraph(2, {"D->0": "through", "1->0": "positive", "D->1": "through", "0->1": "cutoff"})
    with pytest.raises(InputError, match=r"progress must be in \[0, 1\], got 1.5"):
        make_gate("through")(torch.tensor(1.0), 1.5)
    with pytest.raises(InputError, match="no gate for edge 'D->1'"):
        KTGraph(2, {"D->0": "through", "1->0": "cutoff"})


def test_edges():
    assert edge_names(2) == ["D->0", "1->0", "D->1", "0->1"]
    assert len(edge_names(3)) == 9


def _transfer_by_loops(t: torch.Tensor, s: torch.Tensor, alpha: float) -> float:
    b, c, m, n = t.shape
    total = 0.0
    for i in range(b):
        qt = [[sum(float(t[i, ch, y, x]) ** 2 for ch in range(c)) / c for x in range(n)] for y in range(m)]
        qs = [[sum(float(s[i, ch, y, x]) ** 2 for ch in range(c)) / c for x in range(n)] for y in range(m)]
        nt = math.sqrt(sum(v * v for row in qt for v in row))
        ns = math.sqrt(sum(v * v for row in qs for v in row))
        diff = sum((qt[y][x] / nt - qs[y][x] / ns) ** 2 for y in range(m) for x in range(n))
        total += alpha / (m * n) * diff
    return total / b


def test_transfer_loss_against_float64_loops_and_only_trains_the_target():
    torch.manual_seed(0)
    t = torch.randn(2, 3, 4, 5, requires_grad=True)
    s = torch.randn(2, 3, 4, 5, requires_grad=True)
    loss = transfer_loss(t, s, alpha=1000.0)
    assert float(loss.detach()) == pytest.approx(_transfer_by_loops(t.detach(), s.detach(), 1000.0), rel=1e-5)
    loss.backward()
    assert t.grad is not None and t.grad.abs().sum() > 0 and s.grad is None
    assert float(transfer_loss(t.detach(), 3 * t.detach())) == pytest.approx(0.0, abs=1e-6)  # scale-free


def test_generator_terms_sum_the_gated_edges():
    torch.manual_seed(1)
    k = 2
    logits = torch.randn(3, k, k + 1)
    features = {"a": torch.randn(3, k, 4, 2, 2), "b": torch.randn(3, k, 2, 4, 4)}
    graph = KTGraph(
        k, {"D->0": "through", "1->0": "positive-linear", "D->1": "negative-linear", "0->1": "cutoff"}
    )
    terms = generator_terms(graph, logits, features, progress=0.4)
    adv = towards_real(logits)
    pair = sum(transfer_loss(f[:, 0], f[:, 1]) for f in features.values())
    torch.testing.assert_close(terms["D->0"], adv[0])
    torch.testing.assert_close(terms["1->0"], 0.4 * pair)
    torch.testing.assert_close(terms["D->1"], 0.6 * adv[1])
    assert float(terms["0->1"]) == 0.0
    assert KTGraph(1, {"D->0": "cutoff"}).all_cutoff()
