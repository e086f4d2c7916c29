"""The signal task's pictures: attention received along a signal, mapped back through the windows."""

from __future__ import annotations

from pathlib import Path

import torch

from attnlab.explain.capture import capture
from attnlab.models import create_model
from attnlab.train.signals import attention_along, class_examples, plot_signal_attention


def test_attention_along_averages_the_windows_covering_each_step() -> None:
    torch.manual_seed(0)
    model = create_model("san1d-pair355").eval()
    signal = torch.randn(6, 100)
    got = attention_along(model, signal)  # windows start at 0, 10, 20, 30
    assert got.shape == (3, 100)
    assert torch.isnan(got[:, 94:]).all() and torch.isfinite(got[:, :94]).all()  # the tail is not read
    # steps 0-9 are covered by the first window alone: its own received attention
    with torch.no_grad(), capture(model) as rec:
        model(signal[None, :, :64])
        first = model.attention_over_input([rec[n] for n in rec], batch_size=1)[0, :, 0]  # (blocks, 64)
    torch.testing.assert_close(got[:, :10], first[:, :10])


def test_fft_models_map_attention_over_frequency_bins() -> None:
    model = create_model("san1d-pair355-fft").eval()
    assert attention_along(model, torch.randn(6, 100)).shape == (3, 33)


def test_class_examples_and_picture(tmp_path: Path) -> None:
    data = [{"input": torch.randn(6, 80), "label": torch.tensor(c)} for c in (1, 0, 1, 2)]
    examples = class_examples(data, 3)  # type: ignore[arg-type]
    assert sorted(examples) == [0, 1, 2] and examples[1] is data[0]["input"]
    model = create_model("san1d-pair355").eval()
    maps = {c: attention_along(model, s) for c, s in examples.items()}
    path = plot_signal_attention(examples, maps, ["a", "b", "c"], False, tmp_path / "att.png")
    assert path.is_file() and path.stat().st_size > 10_000
