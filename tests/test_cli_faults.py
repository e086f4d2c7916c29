"""The CLI's fault cases, run as a user runs them (the table in docs/engine.md, "Faults").

Every case is a malformed command: it must exit with code 2 and print exactly one line,
``attnlab: error: ...``, on stderr (no traceback), and leave the folder it ran in exactly
as it was: no run folder created, changed or left ``running``. Most cases call
``attnlab.cli.main`` in-process (fast); a representative few run ``python -m attnlab.cli``
in a subprocess. One tiny finished run (``attnlab run demo --trainer.max_steps 2``) is made
once per module; each case works on copies of it (``runs/fin`` and the variants below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import attnlab
from attnlab.cli import main

SMOKE = [
    "--trainer.max_steps", "2", "--trainer.val_every", "1", "--trainer.checkpoint_every", "1",
    "--trainer.progress_bar", "false",
    "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
]  # fmt: skip
SRC = str(Path(attnlab.__file__).resolve().parents[1])
NO_GPU = not torch.cuda.is_available()

# (case id, argv, a substring of the one-line message). Paths are relative to the case's folder.
CASES: list[tuple[str, str, str]] = [
    # attnlab run: recipes, keys, types
    ("unknown-recipe", "run nosuch", "unknown recipe 'nosuch'"),
    ("recipe-typo", "run dem", "did you mean 'demo'"),
    ("recipe-file-missing", "run missing.yaml", "missing.yaml"),
    ("recipe-bad-yaml", "run bad.yaml", "cannot read config bad.yaml"),
    ("recipe-not-a-mapping", "run list.yaml", "must be a YAML mapping"),
    ("recipe-empty", "run empty.yaml", "names no"),
    ("unknown-model", "run demo --model.name nosuch", "unknown model 'nosuch'"),
    ("unknown-task", "run demo --task.name nosuch", "unknown task 'nosuch'"),
    ("unknown-dataset", "run demo --data.name nosuch", "unknown dataset 'nosuch'"),
    ("unknown-runner", "run demo --runner nosuch", "unknown runner 'nosuch'"),
    ("runner-without-task", "run demo --runner dqn", "runner 'dqn' reads no 'task' section"),
    ("unknown-key", "run demo --model.dept 4", "'model.dept' (did you mean 'model.depth'?)"),
    ("prefix-key-trainer", "run demo --trainer.max_step 5", "unknown config key 'trainer.max_step'"),
    ("prefix-key-model", "run demo --model.dep 4", "unknown config key 'model.dep' (did you mean"),
    ("prefix-alias", "run demo --max-step 5", "unknown config key 'max-step' (did you mean '--max-steps'?)"),
    ("prefix-run-dir", "run demo --run runs/x", "unknown config key 'run'"),
    ("unknown-section", "run demo --foo.bar 1", "unknown config key 'foo.bar'"),
    ("unknown-data-key", "run demo --data.seq_length 8", "unknown config key 'data.seq_length'"),
    ("positional-extra", "run demo extra", "unexpected argument 'extra'"),
    ("int-not-a-number", "run demo --trainer.max_steps abc", "trainer.max_steps"),
    ("int-given-a-float", "run demo --trainer.max_steps 2.5", "trainer.max_steps"),
    ("float-not-a-number", "run demo --optim.lr abc", "optim.lr"),
    ("bool-not-a-bool", "run demo --trainer.deterministic maybe", "trainer.deterministic"),
    ("accelerator-unknown", "run demo --trainer.accelerator tpu", "trainer.accelerator"),
    ("optimizer-unknown", "run demo --optim.name lion", "optim.name"),
    # attnlab run: values that cannot train (TrainerConfig.check / OptimConfig.check)
    ("devices-0", "run demo --devices 0", "trainer.devices must be >= 1"),
    ("devices-negative", "run demo --devices -1", "trainer.devices must be >= 1"),
    ("max-steps-0", "run demo --trainer.max_steps 0", "attnlab evaluate"),
    ("max-steps-negative", "run demo --trainer.max_steps -1", "trainer.max_steps must be >= 1, got -1"),
    ("max-steps-minus-5", "run demo --trainer.max_steps -5", "trainer.max_steps must be >= 1, got -5"),
    ("max-steps-equals-negative", "run demo --max-steps=-3", "trainer.max_steps must be >= 1"),
    ("val-every-0", "run demo --trainer.val_every 0", "trainer.val_every must be >= 1"),
    ("checkpoint-every-0", "run demo --trainer.checkpoint_every 0", "trainer.checkpoint_every must be >= 1"),
    ("log-every-0", "run demo --trainer.log_every 0", "trainer.log_every must be >= 1"),
    ("num-nodes-0", "run demo --trainer.num_nodes 0", "trainer.num_nodes must be >= 1"),
    ("accumulate-0", "run demo --trainer.accumulate_grad_batches 0", "trainer.accumulate_grad_batches"),
    ("limit-val-0", "run demo --trainer.limit_val_batches 0", "trainer.limit_val_batches must be >= 1"),
    ("limit-test-negative", "run demo --trainer.limit_test_batches -1", "trainer.limit_test_batches"),
    ("clip-negative", "run demo --trainer.gradient_clip_val -1", "trainer.gradient_clip_val must be >= 0"),
    ("lr-0", "run demo --optim.lr 0", "optim.lr must be > 0"),
    ("lr-nan", "run demo --optim.lr nan", "optim.lr"),
    ("weight-decay-negative", "run demo --optim.weight_decay -1", "optim.weight_decay must be >= 0"),
    ("warmup-negative", "run demo --optim.warmup_steps -1", "optim.warmup_steps must be >= 0"),
    ("min-lr-ratio-2", "run demo --optim.min_lr_ratio 2", "optim.min_lr_ratio must be in [0, 1]"),
    ("betas-above-1", "run demo --optim.betas [0.9,1.5]", "optim.betas must be two numbers in [0, 1)"),
    ("model-data-mismatch", "run demo --model.num_classes 5", "the dataset has 8 classes"),
    ("token-out-of-range", "run demo --data.num_noise 30", "token ids must lie in [0, 24)"),
    ("init-from-missing", "run demo --trainer.init_from runs/nosuch", "trainer.init_from: no weights"),
    # attnlab run: a folder of videos (videos.yaml reads the video-folder datamodule)
    ("video-list-missing", "run videos.yaml --data.train_csv nosuch.csv", "video list not found: nosuch.csv"),
    ("video-list-bad-line", "run videos.yaml --data.train_csv badline.csv", "badline.csv line 2: expected"),
    ("video-missing", "run videos.yaml --data.train_csv missing.csv", "video not found: nosuch.mp4"),
    (
        "video-corrupt",
        "run videos.yaml --data.train_csv corrupt.csv",
        "corrupt.mp4 is corrupt or not a video",
    ),
    ("video-too-short", "run videos.yaml --data.train_csv short.csv", "short.mp4 has 2 frames, fewer than"),
    # attnlab run: the run folder
    ("run-dir-finished", "run demo --run-dir runs/fin", "holds a finished run"),
    ("run-dir-unfinished", "run demo --run-dir runs/unf", "attnlab resume runs/unf"),
    ("run-dir-is-a-file", "run demo --run-dir afile", "afile"),
    ("run-dir-under-a-file", "run demo --run-dir afile/run", "afile"),
    ("run-without-recipe", "run", "the following arguments are required: recipe"),
    ("recipe-help-unknown-recipe", "run nosuch --help", "unknown recipe 'nosuch'"),
    ("recipe-help-bad-value", "run demo --model.depth x --help", "model.depth"),
    # attnlab resume
    ("resume-missing", "resume runs/nosuch", "run folder not found: runs/nosuch"),
    ("resume-finished", "resume runs/fin", "is finished; nothing to resume"),
    ("resume-not-a-run", "resume runs/noconfig", "is not an attnlab run folder"),
    ("resume-edited-architecture", "resume runs/unf-depth1", "does not fit the model"),
    ("resume-corrupt-checkpoint", "resume runs/unf-badckpt", "is corrupt"),
    ("resume-corrupt-run-json", "resume runs/unf-badjson", "run.json is unreadable"),
    ("resume-corrupt-config", "resume runs/unf-badyaml", "cannot read config"),
    (
        "resume-changes-steps",
        "resume runs/unf --trainer.max_steps 3",
        "resume cannot change trainer.max_steps",
    ),
    ("resume-changes-model", "resume runs/unf --model.depth 4", "resume cannot change model.depth"),
    ("resume-changes-data", "resume runs/unf --data.seq_len 8", "resume cannot change data.seq_len"),
    ("resume-bad-devices", "resume runs/unf --devices 0", "trainer.devices"),
    (
        "resume-unknown-root-key",
        "resume runs/unf --data.image_root x",
        "unknown config key 'data.image_root'",
    ),
    ("resume-positional-extra", "resume runs/unf extra", "unexpected argument 'extra'"),
    ("resume-without-folder", "resume", "the following arguments are required: run_dir"),
    # attnlab evaluate
    ("evaluate-missing", "evaluate runs/nosuch", "run folder not found"),
    ("evaluate-unfinished", "evaluate runs/unf", "has no final weights (unfinished run?)"),
    ("evaluate-bad-weights-choice", "evaluate runs/fin --weights foo", "invalid choice: 'foo'"),
    ("evaluate-other-models-weights", "evaluate runs/fin-otherweights", "does not fit the model"),
    ("evaluate-edited-architecture", "evaluate runs/fin-depth1", "does not fit the model"),
    ("evaluate-edited-architecture-last", "evaluate runs/fin-depth1 --weights last", "does not fit"),
    ("evaluate-corrupt-weights", "evaluate runs/fin-badweights", "cannot read the final weights"),
    ("evaluate-no-best-checkpoint", "evaluate runs/fin-nobest --weights best", "has no best checkpoint"),
    ("evaluate-corrupt-last-checkpoint", "evaluate runs/fin-badckpt --weights last", "is corrupt"),
    ("evaluate-not-a-run", "evaluate runs/noconfig", "is not an attnlab run folder"),
    ("evaluate-corrupt-config", "evaluate runs/fin-badyaml", "cannot read config"),
    ("evaluate-config-not-a-mapping", "evaluate runs/fin-listyaml", "must be a YAML mapping"),
    ("evaluate-config-bad-value", "evaluate runs/fin-steps0", "trainer.max_steps must be >= 1"),
    ("evaluate-model-override", "evaluate runs/fin --model.depth 3", "evaluate cannot change model.depth"),
    ("evaluate-unknown-key", "evaluate runs/fin --data.test_sise 3", "(did you mean 'data.test_size'?)"),
    ("evaluate-positional-extra", "evaluate runs/fin extra", "unexpected argument 'extra'"),
    # attnlab explain
    ("explain-missing", "explain runs/nosuch", "runs/nosuch"),
    ("explain-unknown-method", "explain runs/fin --methods foo", "unknown explanation method 'foo'"),
    ("explain-unknown-metric", "explain runs/fin --metrics foo", "foo"),
    ("explain-limit-0", "explain runs/fin --limit 0", "limit must be a positive number"),
    ("explain-limit-not-a-number", "explain runs/fin --limit abc", "invalid int value: 'abc'"),
    ("explain-bad-targets", "explain runs/fin --targets foo", "invalid choice: 'foo'"),
    ("explain-unfinished", "explain runs/unf", "runs/unf"),
    # attnlab generate
    ("generate-out-under-a-file", "generate clevrer-lite --out afile/lite", "under afile, which is a file"),
    ("generate-out-is-a-file", "generate clevrer-lite --out afile", "is a file, not a folder"),
    ("generate-0-videos", "generate clevrer-lite --out lite --videos 0", "num_videos"),
    ("generate-odd-width", "generate clevrer-lite --out lite --width 7", "even"),
    ("generate-unknown-dataset", "generate nosuch --out lite", "invalid choice: 'nosuch'"),
    ("generate-without-out", "generate clevrer-lite", "the following arguments are required: --out"),
    # attnlab abn-maps
    ("abn-maps-export-not-abn", "abn-maps export runs/fin --out maps", "abn-maps takes runs of task"),
    ("abn-maps-export-missing", "abn-maps export runs/nosuch --out maps", "run folder not found"),
    ("abn-maps-export-out-under-a-file", "abn-maps export runs/fin --out afile/maps", "which is a file"),
    ("abn-maps-export-count-0", "abn-maps export runs/fin --out maps --count 0", "abn-maps takes runs"),
    ("abn-maps-finetune-not-abn", "abn-maps finetune runs/fin --maps maps", "not an attention branch"),
    ("abn-maps-without-action", "abn-maps", "the following arguments are required: action"),
    # the command itself
    ("no-command", "", "the following arguments are required: command"),
    ("unknown-command", "nosuch", "invalid choice: 'nosuch'"),
    ("list-unknown", "list nosuch", "invalid choice: 'nosuch'"),
]
if NO_GPU:
    CASES += [
        ("accelerator-gpu", "run demo --trainer.accelerator gpu", "has no CUDA GPU"),
        ("accelerator-cuda", "run demo --trainer.accelerator cuda", "has no CUDA GPU"),
    ]
SUBPROCESS = {
    "unknown-recipe", "prefix-key-trainer", "devices-0", "val-every-0", "max-steps-0", "accelerator-gpu",
    "resume-edited-architecture", "evaluate-other-models-weights", "generate-out-under-a-file",
    "abn-maps-export-not-abn", "run-dir-finished", "bool-not-a-bool", "video-corrupt",
}  # fmt: skip
VIDEO_RECIPE = """description: V-JEPA on a folder of videos (the fault cases')
task: {name: vjepa}
model: {name: vjepa-tiny-mfmnist, in_chans: 3, depth: 1}
data: {name: video-folder, train_csv: videos.csv, val_fraction: 0.34, test_fraction: 0.34, frames_per_clip: 8,
       frame_step: 1, size: 48}
optim: {name: adamw}
trainer: {max_steps: 2}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    cli(["run", "demo", "--run-dir", "run", *SMOKE], cwd=root, check=True)
    return root / "run"


def cli(argv: list[str], cwd: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "attnlab.cli", *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=300)


def _unfinished(run: Path) -> None:
    (run / "run.json").write_text((run / "run.json").read_text().replace('"finished"', '"running"'))
    (run / "model.safetensors").unlink()


def _edit_config(old: str, new: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        text = (run / "config.yaml").read_text()
        assert old in text
        (run / "config.yaml").write_text(text.replace(old, new, 1))

    return edit


def _other_weights(run: Path) -> None:  # the weights of a one-block model
    state = load_file(run / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("blocks.1.")}, run / "model.safetensors")


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


# runs/<name>: a copy of the finished run, then these edits
VARIANTS: dict[str, list[Callable[[Path], None]]] = {
    "fin": [],
    "unf": [_unfinished],
    "unf-depth1": [_unfinished, _edit_config("depth: 2", "depth: 1")],
    "unf-badckpt": [_unfinished, _write("checkpoints/last.ckpt", b"not a checkpoint")],
    "unf-badjson": [_unfinished, _write("run.json", b"{")],
    "unf-badyaml": [_unfinished, _write("config.yaml", b"model: [")],
    "fin-depth1": [_edit_config("depth: 2", "depth: 1")],
    "fin-otherweights": [_other_weights],
    "fin-badweights": [_write("model.safetensors", b"not safetensors")],
    "fin-nobest": [lambda run: (run / "checkpoints" / "best.ckpt").unlink()],
    "fin-badckpt": [_write("checkpoints/last.ckpt", b"\x00" * 64)],
    "fin-badyaml": [_write("config.yaml", b"model: [")],
    "fin-listyaml": [_write("config.yaml", b"- 1\n")],
    "fin-steps0": [_edit_config("max_steps: 2", "max_steps: 0")],
}


def prepare(folder: Path, argv: list[str], finished: Path) -> None:
    """The files a case names: runs/<variant>, a regular file, recipes that do not parse."""
    (folder / "afile").write_text("a regular file\n")
    (folder / "bad.yaml").write_text("model: [\n")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    (folder / "empty.yaml").write_text("")
    (folder / "runs" / "noconfig").mkdir(parents=True)
    (folder / "runs" / "noconfig" / "notes.txt").write_text("not a run\n")
    if "videos.yaml" in argv:
        _video_files(folder)
    for arg in argv:
        name = arg.removeprefix("runs/")
        if name in VARIANTS:
            shutil.copytree(finished, folder / "runs" / name)
            for edit in VARIANTS[name]:
                edit(folder / "runs" / name)


def _video_files(folder: Path) -> None:
    """A recipe reading videos, lists of three videos each, a corrupt and a 2-frame mp4."""
    (folder / "videos.yaml").write_text(VIDEO_RECIPE)
    (folder / "badline.csv").write_text("short.mp4 0\nshort.mp4 one\nshort.mp4 1\n")
    for name in ("missing", "corrupt", "short"):
        video = "nosuch.mp4" if name == "missing" else f"{name}.mp4"
        (folder / f"{name}.csv").write_text(f"{video} 0\n{video} 1\n{video} 0\n")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with av.open(str(folder / "short.mp4"), "w", format="mp4") as container:
        stream = cast(av.VideoStream, container.add_stream("mpeg4", rate=8))
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8))))
        container.mux(stream.encode())


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): _stat(p) for p in sorted(folder.rglob("*"))}


def _stat(path: Path) -> tuple[int, int]:
    """A file's size and time; a folder only exists (its time moves when a failed start is cleaned up)."""
    if path.is_dir():
        return (-1, 0)
    st = path.lstat()
    return (st.st_size, st.st_mtime_ns)


def check_one_line(code: int, err: str, expect: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("attnlab: error: "), err
    assert expect in lines[0], lines[0]


@pytest.mark.parametrize(("argv", "expect"), [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_fault_is_one_line_and_changes_nothing(
    argv: str,
    expect: str,
    finished: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argv.split()
    prepare(tmp_path, args, finished)
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors exit
        code = exc.code  # type: ignore[assignment]
    check_one_line(code, capsys.readouterr().err, expect)
    assert snapshot(tmp_path) == before  # no run folder created, changed or left running


@pytest.mark.parametrize(
    ("argv", "expect"), [pytest.param(a, e, id=i) for i, a, e in CASES if i in SUBPROCESS]
)
def test_fault_in_a_subprocess(argv: str, expect: str, finished: Path, tmp_path: Path) -> None:
    args = argv.split()
    prepare(tmp_path, args, finished)
    before = snapshot(tmp_path)
    done = cli(args, cwd=tmp_path)
    check_one_line(done.returncode, done.stderr, expect)
    assert snapshot(tmp_path) == before


def test_print_config_prints_the_resolved_config_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for flag in ("--print_config", "--print-config", "--print_config=skip_null"):
        assert main(["run", "demo", flag, "--max-steps", "7", "--model.depth", "3"]) == 0
        out, err = capsys.readouterr()
        assert "max_steps: 7" in out and "depth: 3" in out and "name: transformer-classifier-tiny" in out
        assert err == ""
    assert list(tmp_path.iterdir()) == []
    assert main(["run", "demo", "--print_config", "--trainer.val_every", "0"]) == 2
    assert "trainer.val_every must be >= 1" in capsys.readouterr().err


def test_exact_keys_and_aliases_still_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "demo", "--print_config", "--trainer.max_steps", "5", "--devices", "1", "--model.depth=1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "max_steps: 5" in out and "devices: 1" in out and "depth: 1" in out


def test_metrics_json_is_strict_and_report_names_undefined_metrics(finished: Path, tmp_path: Path) -> None:
    import json

    from attnlab.runs.rundir import RunDir
    from attnlab.train.report import metrics_json, write_report

    text = metrics_json({"test/motp": float("nan"), "test/mota": 12.5, "test/x": float("inf")})
    expected = {"test/motp": None, "test/mota": 12.5, "test/x": None}
    assert json.loads(text, parse_constant=pytest.fail) == expected
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    report = write_report(
        RunDir(run),
        title="t",
        description="",
        command="",
        metrics={"test/motp": float("nan")},
        figures={},
        seconds=1,
    ).read_text()
    assert "| test/motp | n/a: no matches" in report and "null in metrics.json" in report
