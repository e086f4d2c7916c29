import pytest
import torch

from attnlab.errors import InputError
from attnlab.layers.masks import causal_mask, merge_masks, video_block_mask


def test_causal_mask_is_lower_triangular():
    m = causal_mask(3, 4)
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    assert torch.equal(m, expected)


@pytest.mark.parametrize("layout", ["frame_major", "slot_major"])
def test_video_block_mask_by_enumeration(layout: str):
    T, K = 3, 2
    m = video_block_mask(T, K, causal=True, same_slot=False, layout=layout)
    per_slot = video_block_mask(T, K, causal=True, same_slot=True, layout=layout)
    tokens = [(t, k) for t in range(T) for k in range(K)]
    if layout == "slot_major":
        tokens = [(t, k) for k in range(K) for t in range(T)]
    for i, (ti, ki) in enumerate(tokens):
        for j, (tj, kj) in enumerate(tokens):
            assert bool(m[i, j]) == (tj <= ti)
            assert bool(per_slot[i, j]) == (tj <= ti and kj == ki)


def test_non_causal_all_slots_is_full():
    assert video_block_mask(2, 3, causal=False).all()


def test_merge_bool_and_float():
    allowed = torch.tensor([[True, False], [True, True]])
    padding = torch.tensor([[False, True]])
    kw = dict(
        is_causal=False, batch=1, heads=1, q_len=2, k_len=2, dtype=torch.float32, device=torch.device("cpu")
    )
    merged = merge_masks(allowed, padding, **kw)
    assert merged.dtype == torch.bool
    assert torch.equal(merged[0, 0], torch.tensor([[True, False], [True, False]]))
    additive = merge_masks(torch.ones(2, 2), padding, **kw)
    assert additive.dtype == torch.float32
    assert additive[0, 0, 0, 0] == 1 and additive[0, 0, 0, 1] == float("-inf")
    assert merge_masks(None, None, **kw) is None


def test_bad_masks():
    kw = dict(
        is_causal=False, batch=2, heads=1, q_len=2, k_len=2, dtype=torch.float32, device=torch.device("cpu")
    )
    with pytest.raises(InputError):
        merge_masks(torch.ones(2, 2, dtype=torch.int64), None, **kw)
    with pytest.raises(InputError):
        merge_masks(torch.ones(3, 2, 2, dtype=torch.bool), None, **kw)
    with pytest.raises(InputError):
        video_block_mask(0, 2)
