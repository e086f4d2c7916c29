"""1D-SAN and the 1D-CNN: the block against a float64 loop over the thesis's equations, the
sliding-window path against windows classified one at a time, capture, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.models.signals.san1d import SAB1d, SAN1DConfig
from attnlab.models.signals.windows import combine, fft_magnitude
from tests.layers.test_pairwise import _randomize_norms, _reference

MODELS = ["san1d-pair355", "san1d-pair355-fft", "cnn1d", "cnn1d-fft"]


def _bn(norm: nn.BatchNorm1d, v: torch.Tensor) -> torch.Tensor:
    """Eval-mode BN of (C, T) from its statistics."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return (v - norm.running_mean[:, None]) * scale[:, None] + norm.bias[:, None]


@pytest.mark.parametrize("dilation", [3, 5])
def test_sab_matches_the_equations(dilation: int) -> None:
    # out = x + W_out relu(bn2(sum_j softmax_j gamma(phi(x_i) - psi(x_j)) ⊙ beta(x_j))), input relu(bn1(x))
    torch.manual_seed(0)
    config = SAN1DConfig(width=8, rel_dim=2, mid_dim=4, share_planes=2)
    block = _randomize_norms(SAB1d(config, dilation)).double().eval()
    x = torch.randn(2, 8, 13, dtype=torch.float64)
    expected = torch.empty_like(x)
    for b in range(2):
        h = torch.relu(_bn(block.norm1, x[b]))
        y, _ = _reference(block.sam, h[None])  # the per-position loop over the footprint
        z = torch.relu(_bn(block.norm2, y[0]))
        expected[b] = x[b] + block.proj.weight[:, :, 0] @ z + block.proj.bias[:, None]
    torch.testing.assert_close(block(x), expected)


def test_pair355_neighbours_are_3_5_5_steps_away() -> None:
    model = create_model("san1d-pair355")
    assert [(b.sam.kernel_size, b.sam.dilation) for b in model.blocks] == [(3, 3), (3, 5), (3, 5)]
    assert all(b.sam.pos_proj is None and b.sam.relation == "subtraction" for b in model.blocks)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("how", ["mean", "vote"])
def test_sliding_windows_equal_windows_classified_one_by_one(name: str, how: str) -> None:
    torch.manual_seed(1)
    model = create_model(name, combine=how).double().eval()
    x = torch.randn(3, 6, 100, dtype=torch.float64)
    with torch.no_grad():
        got = model(x).logits
        per_window = torch.stack([model(x[:, :, s : s + 64]).logits for s in (0, 10, 20, 30)], dim=1)
    torch.testing.assert_close(got, combine(per_window, how))  # type: ignore[arg-type]


def test_fft_models_read_the_fft_magnitude() -> None:
    torch.manual_seed(2)
    model = create_model("cnn1d-fft").double().eval()
    x = torch.randn(2, 6, 64, dtype=torch.float64)
    with torch.no_grad():
        expected = model.head(model.features(fft_magnitude(x)).flatten(1))
        torch.testing.assert_close(model(x).logits, expected)


def test_capture_records_each_block_per_window() -> None:
    model = create_model("san1d-pair355").eval()
    with torch.no_grad(), capture(model) as rec:
        model(torch.randn(2, 6, 84))  # 3 windows each
    assert list(rec) == ["blocks.0.sam", "blocks.1.sam", "blocks.2.sam"]
    weights = [rec[name] for name in rec]
    assert all(w.shape == (6, 2, 3, 64) for w in weights)  # (B * n, A, K, T)
    received = model.attention_over_input(weights, batch_size=2)  # (B, blocks, n, T)
    assert received.shape == (2, 3, 3, 64)
    # softmax weights: each window hands out one unit per query step
    torch.testing.assert_close(received.sum(-1), torch.full((2, 3, 3), 64.0))


@pytest.mark.parametrize("name", ["san1d-pair355", "cnn1d"])
def test_bad_signals_fail_with_one_line(name: str) -> None:
    model = create_model(name)
    cases = {
        "shorter than the window": torch.randn(1, 6, 40),
        "built for 6 channels, the signal has 3": torch.randn(1, 6 // 2, 64),
        "NaN or infinite": torch.randn(2, 6, 64).index_put_((torch.tensor([1]),), torch.tensor(float("nan"))),
        "floating": torch.zeros(1, 6, 64, dtype=torch.long),
    }
    for message, x in cases.items():
        with pytest.raises(InputError, match=message) as err:
            model(x)
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"signals \[1\]"):
        model(cases["NaN or infinite"])


def test_bad_configs_fail() -> None:
    with pytest.raises(ConfigError, match="combine"):
        create_model("cnn1d", combine="max")
    with pytest.raises(ConfigError, match="footprint reaching"):
        create_model("san1d-pair355", window=5)
