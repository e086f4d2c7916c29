"""DINO's weighted k-NN against a case worked out by hand."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.metrics.knn import knn_predict, knn_votes


def test_votes_of_a_hand_computed_case():
    # bank on the unit circle at 0, 60, 90 and 180 degrees (unnormalised lengths must not matter)
    bank = torch.tensor([[2.0, 0.0], [0.5, 0.5 * math.sqrt(3)], [0.0, 3.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[1.0, 0.0]])  # cosines: 1, 0.5, 0, -1
    votes = knn_votes(bank, labels, query, 3, k=2, temperature=0.5)
    # the 2 nearest: label 0 (cos 1) and label 1 (cos 0.5), weights exp(1 / 0.5), exp(0.5 / 0.5)
    assert torch.allclose(votes, torch.tensor([[math.exp(2.0), math.exp(1.0), 0.0]]))
    # with k = 3 the label-1 neighbours (cos 0.5 and 0) sum to e + 1 < e^2: still class 0
    assert knn_predict(bank, labels, query, 3, k=3, temperature=0.5).tolist() == [0]
    # at a high temperature the weights flatten out and two label-1 votes beat one label-0 vote
    assert knn_predict(bank, labels, query, 3, k=3, temperature=100.0).tolist() == [1]


def test_k_larger_than_the_bank_uses_the_whole_bank():
    bank = torch.eye(2)
    votes = knn_votes(bank, torch.tensor([0, 1]), torch.tensor([[1.0, 0.0]]), 2, k=20, temperature=1.0)
    assert torch.allclose(votes, torch.tensor([[math.e, 1.0]]))


def test_bad_input_is_one_line():
    with pytest.raises(InputError, match="bank"):
        knn_votes(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(1, 4), 2)
    with pytest.raises(InputError, match="k >= 1"):
        knn_votes(torch.ones(3, 2), torch.zeros(3, dtype=torch.long), torch.ones(1, 2), 2, k=0)
