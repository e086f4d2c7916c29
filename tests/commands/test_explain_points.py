"""``attnlab explain`` on a PointPillars run: the mAPB table, pictures and PLY files; one-line errors."""

import json
from pathlib import Path

import pytest

from attnlab.cli import main

TINY = ["--data.train_size", "2", "--data.val_size", "1", "--data.test_size", "2",
        "--data.batch_size", "2", "--data.eval_batch_size", "2", "--trainer.max_steps", "1",
        "--trainer.val_every", "1", "--trainer.checkpoint_every", "1", "--trainer.progress_bar", "false",
        "--model.score_threshold", "0.0", "--model.max_num", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pp") / "run"
    assert main(["run", "pointpillars-synthkitti", "--run-dir", str(path), *TINY]) == 0
    return path


def test_writes_the_mapb_table_pictures_and_ply(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "ex"
    assert main(["explain", str(run_dir), "--limit", "1", "--out", str(out), "--confident", "0"]) == 0
    printed = capsys.readouterr().out
    assert "| guided-odam |" in printed and "| untrained odam |" in printed and "## Deletion" in printed
    (saved,) = out.glob("*-points.json")
    info = json.loads(saved.read_text())
    assert info["boxes"] == 2 and info["scenes"] == 1 and len(info["records"]) == 2
    classes = ("Car", "Pedestrian", "Cyclist")
    table = info["mapb"]["all boxes"]
    for method in ("odam", "odam-class", "guided-gradcam", "guided-odam", "random", "uniform",
                   "untrained guided-odam"):  # fmt: skip
        row = table[method]
        assert sum(row[f"n/{c}"] for c in classes) == 2
        assert all(0 <= row[c] <= 100 for c in classes if row[f"n/{c}"])
    for method in ("odam", "guided-odam", "untrained odam", "random", "box"):
        assert sum(info["deletion"][method][f"n/{c}"] for c in classes) == 2
    assert saved.with_suffix(".md").is_file()
    assert next(out.glob("*-points-bev.png")).stat().st_size > 1000
    assert next(out.glob("*-points-perspective.png")).stat().st_size > 1000
    assert "-points-perspective.png" in saved.with_suffix(".md").read_text()
    shown = len({r["label"] for r in info["records"]})  # the surest box of each class
    assert len(list(next(out.glob("*-points-ply")).glob("*.ply"))) == shown * 4  # 4 methods each


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit must be a positive number of test scenes"),
        (["--confident", "2"], "--confident must be a score in [0, 1]"),
        (["--methods", "odam", "gradcam++"], "unknown point explanation method gradcam++"),
    ],
)
def test_bad_options_are_one_line(run_dir: Path, args, message, capsys: pytest.CaptureFixture[str]):
    assert main(["explain", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_folder_and_unfinished_run_are_one_line(run_dir: Path, tmp_path: Path, capsys):
    assert main(["explain", str(tmp_path / "nowhere")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.yaml", "run.json"):
        (unfinished / name).write_bytes((run_dir / name).read_bytes())
    assert main(["explain", str(unfinished)]) == 2
    err = capsys.readouterr().err
    assert "has no final weights" in err and "Traceback" not in err
