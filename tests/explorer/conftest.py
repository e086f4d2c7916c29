"""Run folders as attnlab writes them (and as crashes leave them), built for the explorer's tests."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import uvicorn
import yaml
from fastapi.testclient import TestClient
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from attnlab.explorer.app import create_app
from attnlab.explorer.server import listening_socket, url_of

LOSS = [(step, 2.0 / (1 + step)) for step in range(0, 100, 10)]  # the good run's train/loss


def make_run(
    folder: Path,
    *,
    recipe: str = "demo",
    state: str = "finished",
    started: str = "2026-12-04 10:00:00",
    metrics: dict[str, float] | None = None,
    curve: list[tuple[int, float]] | None = None,
) -> Path:
    """A run folder: run.json, config.yaml, metrics.json, a report with one figure, TensorBoard logs."""
    (folder / "figures").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    run = {"recipe": recipe, "command": f"attnlab run {recipe}", "started": started, "state": state}
    (folder / "run.json").write_text(json.dumps(run | {"train_seconds": 12.5, "error": None}))
    config = {"seed": 0, "model": {"name": "transformer-classifier-tiny"}, "data": {"name": "signal-tokens"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "metrics.json").write_text(json.dumps(metrics or {"test/acc": 0.75, "test/loss": 0.5}))
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "figures" / "curves.png")
    (folder / "report.md").write_text("# demo\n\n## Curves\n\n![Training curves](figures/curves.png)\n")
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"0" * 1000)
    writer = SummaryWriter(str(folder / "tb"))
    for step, value in curve or LOSS:
        writer.add_scalar("train/loss", value, step)
    writer.close()
    return folder


@pytest.fixture
def runs_folder(tmp_path: Path) -> Path:
    """Two good runs, three broken ones, and a secret beside the folder that must stay unread."""
    root = tmp_path / "runs"
    make_run(root / "demo" / "a")
    make_run(
        root / "demo" / "b",
        started="2026-12-04 11:00:00",
        metrics={"test/acc": 0.95, "test/loss": 0.1},
        curve=[(step, 1.0 / (1 + step)) for step in range(0, 100, 10)],
    )
    cut = make_run(root / "cut-short", started="2026-12-04 09:00:00")
    (cut / "run.json").write_text('{"recipe": "demo", "sta')
    no_config = make_run(root / "no-config", started="2026-12-04 09:30:00")
    (no_config / "config.yaml").unlink()
    bad_metrics = make_run(root / "bad-metrics", started="2026-12-04 09:45:00")
    (bad_metrics / "metrics.json").write_text('{"test/acc": 0.')
    (tmp_path / "secret.txt").write_text("not for the explorer")
    return root


def view(client: TestClient, run: str, index: int = 0, method: str | None = None) -> dict:
    """The viewer's answer for test example ``index`` (a 200 is asserted)."""
    params = {"id": run, "index": str(index)} | ({"method": method} if method else {})
    response = client.get("/api/view", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def scaled(t: torch.Tensor) -> torch.Tensor:
    """Min-max scaled to [0, 1], flattened, in float64: how the page's maps are scaled."""
    t = t.flatten().double()
    return (t - t.min()) / (t.max() - t.min())


QUICK = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
TRAINED = {  # run folder -> what trains it for a couple of steps (the viewers' three kinds of input)
    "demo": ["demo", "--data.val_size", "16", "--data.test_size", "16"],
    "abn": ["abn-fashion_mnist", "--model.depth", "8", "--data.batch_size", "4",
            "--data.eval_batch_size", "4", "--trainer.limit_val_batches", "1",
            "--trainer.limit_test_batches", "1"],
    "stabn": ["st_abn-actions", "--data.batch_size", "2", "--data.eval_batch_size", "4",
              "--data.val_size", "4", "--data.test_size", "4"],
    "seq2seq": ["seq2seq-luong-reverse", "--data.val_size", "8", "--data.test_size", "8"],
    "pointpillars": ["pointpillars-synthkitti", "--data.train_size", "4", "--data.val_size", "2",
                     "--data.test_size", "2", "--data.batch_size", "2", "--data.eval_batch_size", "2",
                     "--model.score_threshold", "0.0"],  # an untrained detector's boxes too
    "vjepa": ["vjepa-moving_fmnist", "--data.probe_size", "16", "--data.test_size", "8",
              "--data.val_size", "8", "--data.batch_size", "4", "--task.probe.steps", "2"],
    "dino": ["dino-fmnist", "--data.batch_size", "4", "--data.eval_batch_size", "4", "--data.knn_size", "8",
             "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"],
    "mae": ["mae-fmnist", "--data.batch_size", "4", "--data.eval_batch_size", "4", "--data.knn_size", "8",
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"],
    "sfa": ["sfa-sprites_small", "--data.batch_size", "2", "--data.eval_batch_size", "4",
            "--data.val_size", "4", "--data.test_size", "4"],
    "san1d": ["san1d-basic_motions", "--data.batch_size", "8", "--data.eval_batch_size", "8"],
}  # fmt: skip


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Finished runs of a token transformer (demo), an ABN on Fashion-MNIST and SFA on sprites."""
    from attnlab.cli import main
    from attnlab.data.fashion_mnist import DEFAULT_ROOT

    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    root = tmp_path_factory.mktemp("trained")
    for name, (recipe, *overrides) in TRAINED.items():
        assert main(["run", recipe, "--run-dir", str(root / name), *QUICK, *overrides]) == 0
    # distillation reads its two teachers from the DINO and MAE runs just trained
    teachers = [
        "--model.teacher1.init_from",
        str(root / "dino"),
        "--model.teacher2.init_from",
        str(root / "mae"),
    ]
    small = ["--data.batch_size", "4", "--data.eval_batch_size", "4", "--trainer.limit_val_batches", "1"]
    small += ["--trainer.limit_test_batches", "1"]
    assert main(["run", "distill-fmnist", "--run-dir", str(root / "distill"), *QUICK, *small, *teachers]) == 0
    return root


# ---- the real headless browser (Debian's chromium through Playwright) --------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).parents[2] / "build" / "test-artifacts" / "explorer"


def serve(root: Path, token: str | None) -> Iterator[str]:
    sock = listening_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(root, token=token), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # listening only once uvicorn has started
        assert thread.is_alive() and time.monotonic() < deadline, "the explorer did not start"
        time.sleep(0.01)
    try:
        yield url_of(sock, token)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        yield tab
        browser.close()


@pytest.fixture(scope="module")
def trained_url(trained_runs: Path) -> Iterator[str]:
    """The explorer over the runs the tests trained for two steps (one per viewer)."""
    yield from serve(trained_runs, token=None)
