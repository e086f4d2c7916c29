"""The attnlab command's own subcommands (run / resume / evaluate are in tests/train)."""

import json
from pathlib import Path

import pytest

from attnlab.cli import main
from attnlab.data.clevrer import ClevrerVideos, read_questions


def test_generate_writes_a_clevrer_layout_the_reader_loads(tmp_path: Path):
    out = tmp_path / "lite"
    assert main(["generate", "clevrer-lite", "--out", str(out), "--videos", "2", "--frames", "8"]) == 0
    videos = ClevrerVideos(out / "videos", annotation_dir=out / "annotations")
    assert len(videos) == 2 and videos[0]["video"].shape == (8, 3, 64, 64)
    assert set(read_questions(out / "questions.json")) == {0, 1}
    assert json.loads((out / "config.json").read_text())["seed"] == 0


def test_generate_bad_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["generate", "clevrer-lite", "--out", str(tmp_path / "x"), "--width", "7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and "even" in err and len(err.strip().splitlines()) == 1


def test_run_recipe_help_lists_its_keys_types_values_and_aliases(
    capsys: pytest.CaptureFixture[str], monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["run", "sfa-vmds", "--model.num_slots", "4", "--help"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
        for line in out.splitlines()
        if line.count("│") == 5
    }
    assert rows["model.num_slots"] == ["int", "4", "8"]  # the override, and the model's default
    assert rows["optim.name"] == ["adamw|adam|sgd", "adam", "adamw"]
    assert rows["trainer.gradient_clip_val"] == ["float|None", "10.0", "None"]
    assert rows["trainer.max_steps"][:2] == ["int", "100"]
    assert "--devices = --trainer.devices" in out and "Slots and Frames Attention" in out


def test_run_recipe_help_with_a_bad_key_is_one_line(capsys: pytest.CaptureFixture[str]):
    assert main(["run", "demo", "--model.dept", "3", "-h"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "attnlab: error: unknown config key 'model.dept' (did you mean 'model.depth'?)"
    )
