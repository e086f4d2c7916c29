import pytest
import torch

from attnlab.data.reversal import BOS, EOS, FIRST_WORD, PAD, ReversalData, ReversalTokens
from attnlab.errors import ConfigError


def make(size: int | None = 200, seed: int = 3) -> ReversalTokens:
    return ReversalTokens(num_words=6, min_len=2, max_len=7, seed=seed, size=size)


def test_target_is_the_source_reversed_then_eos_and_masks_mark_the_padding():
    data = make()
    for i in range(len(data)):
        s = data[i]
        words = s["source"][~s["source_mask"]].tolist()
        L = len(words)
        assert 2 <= L <= 7 and all(FIRST_WORD <= w < FIRST_WORD + 6 for w in words)
        assert s["source"][L:].eq(PAD).all() and s["source_mask"].tolist() == [False] * L + [True] * (7 - L)
        assert s["target"].tolist() == words[::-1] + [EOS] + [PAD] * (7 - L)
        assert s["target_mask"].tolist() == [False] * (L + 1) + [True] * (7 - L)  # EOS is scored
        assert BOS not in s["target"].tolist()


def test_the_alignment_points_at_the_source_word_each_target_word_copies():
    data = make()
    for i in range(50):
        s = data[i]
        L = int((~s["source_mask"]).sum())
        assert s["alignment"][:L].tolist() == list(range(L - 1, -1, -1))  # written out: L-1-i
        assert s["alignment"][L:].eq(-1).all()  # EOS and padding align to nothing
        for t in range(L):
            assert s["target"][t] == s["source"][s["alignment"][t]]


def test_samples_are_a_pure_function_of_seed_and_index_and_lengths_cover_their_range():
    a, b, other = make(), make(), make(seed=4)
    assert all(torch.equal(a[i]["source"], b[i]["source"]) for i in range(20))
    assert not all(torch.equal(a[i]["source"], other[i]["source"]) for i in range(20))
    lengths = {int((~a[i]["source_mask"]).sum()) for i in range(len(a))}
    assert lengths == set(range(2, 8))
    assert make(size=None)[10**9]["source"].shape == (7,)
    with pytest.raises(IndexError):
        make(size=5)[5]


def test_datamodule_splits_differ_and_bad_config_is_one_line():
    dm = ReversalData(seed=0, num_words=6, min_len=2, max_len=7, val_size=8, test_size=8)
    assert dm.vocab_size == 9
    val, test = dm.dataset("val"), dm.dataset("test")
    assert not all(torch.equal(val[i]["source"], test[i]["source"]) for i in range(8))
    with pytest.raises(ConfigError, match="min_len <= max_len"):
        ReversalData(seed=0, min_len=5, max_len=4)
