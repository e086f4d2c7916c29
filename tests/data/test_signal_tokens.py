import pytest
import torch

from attnlab.data.signal_tokens import SignalTokens, SignalTokensData
from attnlab.errors import ConfigError


def make(size: int | None = 50, seed: int = 3) -> SignalTokens:
    return SignalTokens(seq_len=12, num_noise=5, num_classes=4, seed=seed, size=size)


def test_exactly_one_signal_token_which_is_the_label():
    data = make()
    for i in range(len(data)):
        sample = data[i]
        signal = (sample["input"] >= 5).nonzero().flatten()
        assert signal.tolist() == [int(sample["evidence"])]
        assert int(sample["input"][signal]) - 5 == int(sample["label"])


def test_samples_are_a_pure_function_of_seed_and_index():
    a, b, other = make(), make(), make(seed=4)
    assert all(torch.equal(a[i]["input"], b[i]["input"]) for i in range(10))
    assert not all(torch.equal(a[i]["input"], other[i]["input"]) for i in range(10))


def test_labels_and_positions_cover_their_ranges():
    data = make(size=400)
    labels = {int(data[i]["label"]) for i in range(len(data))}
    positions = {int(data[i]["evidence"]) for i in range(len(data))}
    assert labels == set(range(4)) and positions == set(range(12))


def test_procedural_stream_has_no_end_and_finite_sets_do():
    stream = make(size=None)
    assert stream.procedural and stream[10**9]["input"].shape == (12,)
    with pytest.raises(IndexError):
        make(size=5)[5]


def test_splits_are_disjoint_streams_and_bad_config_is_an_error():
    dm = SignalTokensData(seed=0, seq_len=12, num_noise=5, num_classes=4)
    val, test = dm.dataset("val"), dm.dataset("test")
    assert not torch.equal(val[0]["input"], test[0]["input"])
    assert dm.vocab_size == 9
    with pytest.raises(ConfigError):
        SignalTokensData(seed=0, num_classes=1)
