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
