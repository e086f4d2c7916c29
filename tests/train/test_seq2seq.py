"""The seq2seq task: its inputs and floors by hand, and small runs through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.train.seq2seq import alignment_scores, copy_source, teacher_input


def test_teacher_input_is_bos_then_the_target_shifted():
    target = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0]])
    assert teacher_input(target).tolist() == [[1, 5, 6, 2], [1, 7, 2, 0]]


def test_copy_floor_is_the_source_unreversed_then_eos():
    source = torch.tensor([[5, 6, 0], [7, 0, 0]])
    mask = source == 0
    assert copy_source(source, mask, 4).tolist() == [[5, 6, 2, 0], [7, 2, 0, 0]]


def test_alignment_scores_of_the_anti_diagonal_and_of_the_diagonal():
    alignment = torch.tensor([[2, 1, 0, -1]])  # a 3-word source reversed, then EOS
    anti = torch.zeros(1, 4, 3)
    anti[0, [0, 1, 2], [2, 1, 0]] = 1.0
    perfect = alignment_scores(anti, alignment)
    assert perfect["align_acc"] == 1.0 and perfect["aer"] == 0.0 and perfect["align_mass"] == 1.0
    diagonal = alignment_scores(torch.eye(4, 3)[None], alignment)  # only the middle word is right
    assert diagonal["align_acc"].item() == pytest.approx(1 / 3)
    assert diagonal["aer"].item() == pytest.approx(2 / 3)


SMALL = [
    "--trainer.max_steps",
    "3",
    "--trainer.val_every",
    "3",
    "--trainer.progress_bar",
    "false",
    "--data.batch_size",
    "8",
    "--data.val_size",
    "16",
    "--data.test_size",
    "16",
]


@pytest.mark.parametrize("name", ["seq2seq-none", "seq2seq-bahdanau"])
def test_a_small_run_reports_alignment_scores_only_with_attention(name: str, tmp_path: Path):
    run_dir = tmp_path / name
    assert (
        main(["run", "seq2seq-luong-reverse", "--model.name", name, "--run-dir", str(run_dir), *SMALL]) == 0
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("loss", "exact_match", "token_acc", "floor_copy/exact_match", "floor_diagonal/aer"):
        assert f"test/{key}" in metrics
    assert metrics["test/floor_copy/token_acc"] < 0.5  # reversing is not copying
    has_attention = name != "seq2seq-none"
    assert ("test/aer" in metrics) == has_attention
    assert (run_dir / "figures" / "alignments.png").is_file() == has_attention
    if has_attention:
        assert "alignments.png" in (run_dir / "report.md").read_text()
