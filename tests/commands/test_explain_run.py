"""``attnlab explain`` and ``attnlab evaluate``: a finished run's reports, end to end."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnlab.cli import ALL_METHODS_FAILED, main
from attnlab.commands.explain_run import explain_run
from attnlab.errors import ConfigError, RunDirError
from attnlab.explain.maps import METHODS
from attnlab.recipes import recipe_path


@pytest.fixture(scope="module")
def abn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnlab.data.fashion_mnist import DEFAULT_ROOT

    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    run_dir = tmp_path_factory.mktemp("runs") / "abn"
    smoke = ["--trainer.max_steps", "1", "--trainer.val_every", "1", "--trainer.limit_val_batches", "1"]
    smoke += ["--trainer.limit_test_batches", "1", "--trainer.progress_bar", "false", "--model.depth", "8"]
    smoke += ["--data.batch_size", "4", "--data.eval_batch_size", "4"]
    torch.manual_seed(0)
    assert main(["run", "abn-fashion_mnist", "--run-dir", str(run_dir), *smoke]) == 0
    return run_dir


def test_explain_run_on_a_finished_abn_run(abn_run: Path, tmp_path: Path):
    run_dir = tmp_path / "abn"
    shutil.copytree(abn_run, run_dir)
    done = explain_run(run_dir, limit=3, steps=3, figure_examples=2, batch_size=2)
    assert done.report.parent == run_dir / "explanations" and done.report.name.endswith("-all.md")
    assert done.data == done.report.with_suffix(".json") and done.figure == done.report.with_suffix(".png")
    assert done.figure.is_file() and not done.failed
    saved = json.loads(done.data.read_text())
    assert saved["cam_layer"] == "perception_stage" and saved["examples"] == 3
    assert saved["dtype"] == "float32" and saved["failed"] == {}
    results = saved["results"]
    assert set(results) == set(METHODS)
    assert results["abn"]["deletion"]["count"] == 3 and math.isfinite(results["gradcam"]["insertion"]["mean"])
    rollout = results["rollout"]["deletion"]
    assert rollout["count"] == 0 and "self-attention" in rollout["note"] and not rollout["failed"]
    assert results["random"]["pointing"]["mean"] is None  # Fashion-MNIST has no boxes
    text = done.report.read_text()
    assert "| abn |" in text and f"]({done.figure.name})" in text
    only = dict(methods=("center",), metrics=("deletion",), limit=1, steps=2)
    other = explain_run(run_dir, **only, out=tmp_path / "o")
    assert other.report.parent == tmp_path / "o" and other.report.name.endswith("-center.md")
    again = explain_run(run_dir, **only, out=tmp_path / "o")  # the same second: beside, not over
    assert again.report != other.report and other.report.is_file() and again.report.is_file()
    assert done.report.is_file()  # the first evaluation is still there
    garments = ["explain", str(run_dir), "--methods", "center", "--metrics", "energy", "--limit", "2"]
    assert main([*garments, "--regions", "foreground", "--out", str(tmp_path / "fg")]) == 0
    (fg,) = (tmp_path / "fg").glob("*.json")
    energy = json.loads(fg.read_text())["results"]["center"]["energy"]
    assert energy["count"] == 2 and 0 < energy["mean"] < 1  # the garment, found without boxes
    with pytest.raises(RunDirError):
        explain_run(tmp_path / "missing")


def test_the_command_says_where_it_wrote(abn_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run_dir = tmp_path / "abn"
    shutil.copytree(abn_run, run_dir)
    args = ["explain", str(run_dir), "--methods", "center", "--metrics", "deletion", "--limit", "1"]
    assert main(args) == 0
    (report,) = (run_dir / "explanations").glob("*.md")
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"wrote {report} (and {report.stem}.json, {report.stem}.png beside it)"
    assert main(["evaluate", str(run_dir)]) == 0
    (saved,) = (run_dir / "evaluations").glob("final-*.json")
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {saved}"


def _overflowing_copy(run_dir: Path, to: Path) -> Path:
    """The run with every perception logit shifted by +150: the same predictions and gradients, but
    Grad-CAM++'s exp(score) overflows float32 (max ~3.4e38 < e^150 ~ 1.4e65) and not float64."""
    shutil.copytree(run_dir, to)
    weights = load_file(to / "model.safetensors")
    weights["fc.bias"] = weights["fc.bias"] + 150.0
    save_file(weights, to / "model.safetensors")
    return to


def test_a_failing_method_loses_nothing_else_and_float64_fixes_it(
    abn_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run_dir = _overflowing_copy(abn_run, tmp_path / "hot")
    args = ["explain", str(run_dir), "--metrics", "deletion", "--limit", "2"]
    assert main([*args, "--methods", "gradcam", "gradcam++", "center"]) == 0
    captured = capsys.readouterr()
    note = captured.err.strip()
    assert "\n" not in note and note.startswith("attnlab: note: gradcam++ failed")
    assert "--float64" in note and "Traceback" not in captured.err
    (saved,) = (run_dir / "explanations").glob("*.json")
    assert saved.name.endswith("-gradcam_gradcam++_center.json")
    results = json.loads(saved.read_text())["results"]
    assert results["gradcam++"]["deletion"]["failed"] and results["gradcam++"]["deletion"]["count"] == 0
    reason = results["gradcam++"]["deletion"]["note"]
    assert "overflows torch.float32" in reason and f"attnlab explain {run_dir} --float64" in reason
    assert results["gradcam"]["deletion"]["count"] == 2 and results["center"]["deletion"]["count"] == 2
    table = saved.with_suffix(".md").read_text()
    assert "| gradcam++ | failed | 0 |" in table and "- failed for gradcam++: " in table
    assert saved.with_suffix(".png").is_file()

    assert main([*args, "--methods", "gradcam++", "--out", str(tmp_path / "none")]) == ALL_METHODS_FAILED
    assert capsys.readouterr().err.startswith("attnlab: error: every method failed")
    assert ALL_METHODS_FAILED not in (0, 1, 2, 3)  # not success, a crash, a user error or NaN training

    assert main([*args, "--methods", "gradcam++", "--float64", "--out", str(tmp_path / "wide")]) == 0
    assert capsys.readouterr().err == ""
    (wide,) = (tmp_path / "wide").glob("*.json")
    saved64 = json.loads(wide.read_text())
    assert saved64["dtype"] == "float64" and saved64["failed"] == {}
    score = saved64["results"]["gradcam++"]["deletion"]
    assert score["count"] == 2 and not score["failed"] and math.isfinite(score["mean"])


def test_an_object_centric_run_is_refused_naming_what_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    run_dir = tmp_path / "monet"
    run_dir.mkdir()
    shutil.copy(recipe_path("monet-vmds"), run_dir / "config.yaml")  # a run folder as far as explain reads
    with pytest.raises(ConfigError, match="takes classification runs"):
        explain_run(run_dir)  # before any weights are read: there are none
    assert main(["explain", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "run of task 'object-centric'" in err and "figures/decomposition.png" in err
    assert f"attnlab evaluate {run_dir}" in err


def test_a_run_without_a_task_is_refused_naming_its_runner(tmp_path: Path):
    from types import SimpleNamespace

    from attnlab.commands.explain_run import _check_task

    spec = SimpleNamespace(task_name=None, runner="dqn")
    with pytest.raises(ConfigError, match=r"takes classification runs.* a run of runner 'dqn'"):
        _check_task(spec, tmp_path)  # type: ignore[arg-type]
