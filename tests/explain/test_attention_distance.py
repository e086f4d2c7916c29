import math

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain import capture
from attnlab.explain.attention_distance import (
    attention_distance,
    attention_distance_figure,
    layer_attention_distances,
    patch_distances,
    plot_attention_distance,
)
from attnlab.layers.transformer import TransformerBlock


def loop_distance(attn, grid, patch, prefix, renormalize=False):
    """(B, H) float64 reference: every query patch, every key patch, one at a time."""
    h, w = grid
    a = attn.detach().double()
    out = torch.zeros(a.shape[0], a.shape[1], dtype=torch.float64)
    for b in range(a.shape[0]):
        for head in range(a.shape[1]):
            total = 0.0
            for q in range(h * w):
                qy, qx = divmod(q, w)
                mass = sum(float(a[b, head, prefix + q, prefix + k]) for k in range(h * w))
                acc = 0.0
                for k in range(h * w):
                    ky, kx = divmod(k, w)
                    d = math.sqrt(((qy - ky) * patch) ** 2 + ((qx - kx) * patch) ** 2)
                    acc += float(a[b, head, prefix + q, prefix + k]) * d
                total += acc / mass if renormalize else acc
            out[b, head] = total / (h * w)
    return out


def test_uniform_attention_on_a_2x2_grid_is_the_hand_value():
    attn = torch.full((1, 1, 4, 4), 0.25)
    # from any patch: itself 0, two neighbours at 16 px, the diagonal at 16*sqrt(2) px
    expected = (0 + 16 + 16 + 16 * math.sqrt(2)) / 4
    assert attention_distance(attn, (2, 2), 16).item() == pytest.approx(expected)


def test_one_hot_attention_to_a_corner_of_a_3x3_grid_is_the_hand_value():
    attn = torch.zeros(1, 1, 9, 9)
    attn[..., 0] = 1.0  # every query looks at patch (0, 0)
    expected = 4 * (0 + 1 + 2 + 1 + math.sqrt(2) + math.sqrt(5) + 2 + math.sqrt(5) + math.sqrt(8)) / 9
    assert attention_distance(attn, (3, 3), 4).item() == pytest.approx(expected)
    assert attention_distance(torch.eye(9).expand(1, 2, 9, 9), (3, 3), 4).tolist() == [[0.0, 0.0]]


def test_rectangular_patches_and_grid():
    d = patch_distances((2, 3), (2, 3))
    assert d.shape == (6, 6)
    assert d[0, 5].item() == pytest.approx(math.hypot(2, 6))  # (0,0) to (1,2)
    assert d[1, 3].item() == pytest.approx(math.hypot(2, 3))  # (0,1) to (1,0)
    torch.testing.assert_close(d, d.T)


def test_cls_is_excluded_as_query_and_key_without_renormalising():
    attn = torch.zeros(1, 1, 5, 5)
    attn[0, 0, 0, 4] = 1.0  # the CLS query looks far away: must not count
    attn[0, 0, 1:, 0] = 0.5  # half of every patch query's mass on CLS
    attn[0, 0, 1:, 1:] = 0.125  # the other half uniform over the 2x2 patches
    uniform = (0 + 16 + 16 + 16 * math.sqrt(2)) / 4
    got = attention_distance(attn, (2, 2), 16, num_prefix_tokens=1)
    assert got.item() == pytest.approx(uniform / 2)
    renormed = attention_distance(attn, (2, 2), 16, num_prefix_tokens=1, renormalize=True)
    assert renormed.item() == pytest.approx(uniform)


@pytest.mark.parametrize("renormalize", [False, True])
def test_matches_a_float64_double_loop(renormalize):
    gen = torch.Generator().manual_seed(0)
    attn = torch.randn(2, 3, 13, 13, generator=gen).mul(3).softmax(-1)  # CLS + 3x4 grid
    got = attention_distance(attn, (3, 4), 5, num_prefix_tokens=1, renormalize=renormalize)
    torch.testing.assert_close(got, loop_distance(attn, (3, 4), 5, 1, renormalize))


def test_works_on_what_capture_records_from_a_transformer_block_stack():
    torch.manual_seed(0)
    model = nn.Sequential(*[TransformerBlock(16, num_heads=4) for _ in range(3)]).eval()
    tokens = torch.randn(2, 1 + 16, 16)  # CLS + a 4x4 patch grid
    with capture(model) as rec:
        model(tokens)
    dist = layer_attention_distances(rec, (4, 4), 8, num_prefix_tokens=1)
    assert list(dist) == ["0.attn", "1.attn", "2.attn"]
    for name, heads in dist.items():
        assert heads.shape == (4,)
        torch.testing.assert_close(heads, loop_distance(rec[name], (4, 4), 8, 1).mean(0))
    some = layer_attention_distances(rec, (4, 4), 8, num_prefix_tokens=1, layers=["1.attn"])
    assert list(some) == ["1.attn"]


def test_bad_inputs_are_one_line_input_errors():
    with pytest.raises(InputError, match="17 tokens but a 4x4 grid with 0 prefix"):
        attention_distance(torch.rand(1, 2, 17, 17), (4, 4), 8)
    with pytest.raises(InputError, match=r"\(B, H, N, N\)"):
        attention_distance(torch.rand(2, 17, 17), (4, 4), 8, num_prefix_tokens=1)
    with pytest.raises(InputError, match="layer 'b'"):
        layer_attention_distances({"a": torch.rand(1, 1, 4, 4), "b": torch.rand(1, 1, 5, 5)}, (2, 2), 4)
    with pytest.raises(InputError, match="empty"):
        layer_attention_distances({}, (2, 2), 4)
    with pytest.raises(InputError, match="patch_size"):
        patch_distances((2, 2), 0)


def test_figure_has_a_dot_per_head_and_the_mean_line_and_writes_a_file(tmp_path):
    series = {
        "cl": {"l0": torch.tensor([1.0, 3.0]), "l1": torch.tensor([5.0, 9.0])},
        "mim": {"l0": torch.tensor([2.0, 2.0]), "l1": torch.tensor([1.0, 0.0])},
    }
    fig = attention_distance_figure(series, title="t")
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.lines] == [[2.0, 7.0], [2.0, 0.5]]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 8
    path = plot_attention_distance(series, tmp_path / "sub" / "distance.png")
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError):
        attention_distance_figure({})
