"""FeatureScale: statistics against a float64 computation by hand, the identity until fitted, a
feature that never varies, and the statistics travelling in the state dict."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.feature_scale import MIN_STD, FeatureScale


def test_fit_gives_every_feature_the_training_tokens_mean_and_biased_spread():
    torch.manual_seed(0)
    tokens = torch.randn(5, 4, 3, 2) * torch.tensor([0.05, 7.0]) + torch.tensor([1.0, -3.0])
    scale = FeatureScale(2)
    x = torch.randn(6, 2)
    assert torch.equal(scale(x), x) and not scale.fitted  # a fresh module changes nothing
    scale.fit(tokens)
    rows = tokens.reshape(-1, 2).tolist()  # 60 tokens of 2 features, summed by hand below
    for d in range(2):
        values = [row[d] for row in rows]
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        assert scale.mean[d].item() == pytest.approx(mean, rel=1e-6)
        assert scale.std[d].item() == pytest.approx(std, rel=1e-6)
    assert scale.fitted
    scaled = scale(tokens).reshape(-1, 2).double()
    torch.testing.assert_close(scaled.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(scaled.std(0, correction=0), torch.ones(2, dtype=torch.float64))


def test_a_constant_feature_is_centred_not_divided_by_zero():
    scale = FeatureScale(2)
    scale.fit(torch.stack([torch.full((4,), 2.5), torch.arange(4.0)], dim=-1))  # (4, 2)
    assert scale.std[0].item() == torch.tensor(MIN_STD).item()  # float32 buffer
    assert torch.equal(scale(torch.tensor([[2.5, 0.0]]))[:, 0], torch.zeros(1))


def test_the_statistics_travel_in_the_state_dict():
    scale = FeatureScale(3)
    scale.fit(torch.randn(10, 3) * 4 + 2)
    loaded = FeatureScale(3)
    loaded.load_state_dict(scale.state_dict())
    x = torch.randn(2, 3)
    assert loaded.fitted and torch.equal(loaded(x), scale(x))


def test_tokens_of_the_wrong_width_are_one_line_errors():
    with pytest.raises(InputError, match=r"non-empty \(\.\.\., 3\), got \(4, 2\)"):
        FeatureScale(3).fit(torch.zeros(4, 2))
    with pytest.raises(InputError, match=r"got \(0, 3\)"):
        FeatureScale(3).fit(torch.zeros(0, 3))
