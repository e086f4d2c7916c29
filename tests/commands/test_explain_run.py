"""``attnlab explain``: a finished run's explanation report, end to end."""

import json
import math
from pathlib import Path

import pytest

from attnlab.commands.explain_run import explain_run
from attnlab.errors import RunDirError
from attnlab.explain.maps import METHODS


def test_explain_run_on_a_finished_abn_run(tmp_path: Path):
    from attnlab.cli import main
    from attnlab.data.fashion_mnist import DEFAULT_ROOT

    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    run_dir = tmp_path / "abn"
    smoke = ["--trainer.max_steps", "1", "--trainer.val_every", "1", "--trainer.limit_val_batches", "1"]
    smoke += ["--trainer.limit_test_batches", "1", "--trainer.progress_bar", "false", "--model.depth", "8"]
    smoke += ["--data.batch_size", "4", "--data.eval_batch_size", "4"]
    assert main(["run", "abn-fashion_mnist", "--run-dir", str(run_dir), *smoke]) == 0
    report = explain_run(run_dir, limit=3, steps=3, figure_examples=2, batch_size=2)
    assert report == run_dir / "explanations.md"
    saved = json.loads((run_dir / "explanations.json").read_text())
    assert saved["cam_layer"] == "perception_stage" and saved["examples"] == 3
    results = saved["results"]
    assert set(results) == set(METHODS)
    assert results["abn"]["deletion"]["count"] == 3 and math.isfinite(results["gradcam"]["insertion"]["mean"])
    rollout = results["rollout"]["deletion"]
    assert rollout["count"] == 0 and "self-attention" in rollout["note"]
    assert results["random"]["pointing"]["mean"] is None  # Fashion-MNIST has no boxes
    text = report.read_text()
    assert "| abn |" in text and "figures/explanations.png" in text
    assert (run_dir / "figures" / "explanations.png").is_file()
    only = dict(methods=("center",), metrics=("deletion",), limit=1, steps=2)
    other = explain_run(run_dir, **only, out=tmp_path / "o")
    assert other == tmp_path / "o" / "explanations.md" and "center" in other.read_text()
    garments = ["explain", str(run_dir), "--methods", "center", "--metrics", "energy", "--limit", "2"]
    assert main([*garments, "--regions", "foreground", "--out", str(tmp_path / "fg")]) == 0
    energy = json.loads((tmp_path / "fg" / "explanations.json").read_text())["results"]["center"]["energy"]
    assert energy["count"] == 2 and 0 < energy["mean"] < 1  # the garment, found without boxes
    with pytest.raises(RunDirError):
        explain_run(tmp_path / "missing")
