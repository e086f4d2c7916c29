"""The signal task's pictures: attention received along a signal, mapped back through the windows."""

from __future__ import annotations

from pathlib import Path

import pytest
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


SMOKE = ["--trainer.max_steps", "2", "--trainer.progress_bar", "false", "--data.batch_size", "4"]


def _fails_in_one_line(args: list[str], expect: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from attnlab.cli import main

    code = main(["run", "cnn1d-basic_motions", "--run-dir", str(tmp_path / "run"), *SMOKE, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("attnlab: error: ") and expect in err[0], err
    assert not (tmp_path / "run").exists()  # a failed start leaves no run folder


def test_cli_bad_signal_inputs_fail_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("aeon")  # the recipes read aeon's shipped problems (the signals extra)
    root = tmp_path / "ts" / "Bad"
    root.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):  # data before @data: a malformed header
        (root / f"Bad_{split}.ts").write_text("@problemName Bad\n@classLabel true a b\n1,2:a\n")
    cases = {
        "the model was built for 6 channels, the signal has 1": [
            "--data.problem",
            "ArrowHead",
            "--model.num_classes",
            "3",
        ],
        "no Nope_TRAIN.ts": ["--data.problem", "Nope"],
        "Bad_TRAIN.ts:3: data before @data": ["--data.problem", "Bad", "--data.root", str(tmp_path / "ts")],
        "shorter than the window (200)": ["--data.window", "200"],
    }
    for expect, args in cases.items():
        _fails_in_one_line(args, expect, tmp_path, capsys)
