"""Editing an ABN run's maps in the explorer: the exported maps, the prediction with an edited map
injected (against the model called directly), saving in the format abn-maps finetune reads, and
the fine-tuning job it starts (finished, and cancelled)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from attnlab.data.edited_maps import map_file_name, read_examples, read_map_png
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run


@pytest.fixture
def runs(trained_runs: Path, tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for name in ("abn", "demo"):
        shutil.copytree(trained_runs / name, root / name)
    return root


@pytest.fixture
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def top(model: torch.nn.Module, x: torch.Tensor, override: torch.Tensor | None = None) -> float:
    with torch.no_grad():
        return float(model(x, attention_override=override).logits.softmax(-1).max())


def test_the_first_edit_exports_the_models_maps(client: TestClient, runs: Path):
    shown = client.get("/api/edit", params={"id": "abn", "index": 2}).json()
    assert shown["count"] == 32 and shown["shape"] == [28, 28] and (runs / "abn" / "edited_maps").is_dir()
    x = read_examples(runs / "abn" / "edited_maps")["inputs"][2:3]
    model = load_run(runs / "abn").task.model
    with torch.no_grad():
        own = F.interpolate(model(x).attention, size=(28, 28), mode="bilinear", align_corners=False)
    assert torch.tensor(shown["map"]) == pytest.approx(own.flatten(), abs=0.5 / 255 + 1e-4)  # an 8-bit PNG
    assert shown["model"][0]["p"] == pytest.approx(top(model, x), abs=1e-4)


def test_the_prediction_follows_the_painted_map(client: TestClient, runs: Path):
    client.get("/api/edit", params={"id": "abn", "index": 0})
    x = read_examples(runs / "abn" / "edited_maps")["inputs"][:1]
    model = load_run(runs / "abn").task.model
    h, w = model(x).attention.shape[-2:]
    painted = torch.zeros(28, 28)
    painted[7:21, 7:21] = 1.0  # attend to the centre only
    got = client.post("/api/edit/predict", json={"id": "abn", "index": 0, "map": painted.flatten().tolist()})
    assert got.status_code == 200, got.text
    expected = top(model, x, F.adaptive_avg_pool2d(painted[None, None], (h, w)))
    assert got.json()["edited"][0]["p"] == pytest.approx(expected, abs=1e-4)
    assert expected != pytest.approx(top(model, x), abs=1e-6)  # the map changed the prediction


def test_a_saved_map_is_the_png_finetune_reads(client: TestClient, runs: Path):
    client.get("/api/edit", params={"id": "abn", "index": 5})
    painted = torch.linspace(0, 1, 28 * 28)
    got = client.put("/api/edit/map", json={"id": "abn", "index": 5, "map": painted.tolist()})
    assert got.status_code == 200 and got.json()["saved"] == f"abn/edited_maps/maps/{map_file_name(5)}"
    saved = read_map_png(runs / "abn" / "edited_maps" / "maps" / map_file_name(5), (28, 28)).flatten()
    assert saved == pytest.approx(painted, abs=0.5 / 255 + 1e-6)
    assert client.get("/api/edit", params={"id": "abn", "index": 5}).json()["map"] == pytest.approx(
        saved.tolist(), abs=1e-4
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "abn", "index": 0, "map": [0.5] * 10}, "has 28 x 28 = 784 values, got 10"),
        ({"id": "abn", "index": 0, "map": [2.0] * 784}, "map values must be numbers in [0, 1]"),
        ({"id": "abn", "index": 99, "map": [0.5] * 784}, "example 99 is not among the 32 exported examples"),
        ({"id": "demo", "index": 0, "map": [0.5] * 784}, "for attention branch (ABN) runs only"),
    ],
)
def test_a_map_that_does_not_fit_is_one_line(client: TestClient, body: dict, message: str):
    response = client.put("/api/edit/map", json=body)
    assert response.status_code == 422 and message in response.json()["detail"]


def wait_for(client: TestClient, job_id: int, states: tuple[str, ...], seconds: float = 240) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        (job,) = [j for j in client.get("/api/jobs").json() if j["id"] == job_id]
        if job["status"] in states:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job['status']}: {job['last_line']}")


def test_a_finetuning_job_writes_a_new_run(client: TestClient, runs: Path):
    client.get("/api/edit", params={"id": "abn", "index": 0})
    started = client.post("/api/jobs", json={"kind": "finetune", "id": "abn", "steps": 2}).json()
    assert started["status"] == "running" and started["run"].startswith("abn-edited-")
    done = wait_for(client, started["id"], ("finished", "failed"))
    assert done["status"] == "finished" and done["progress"] == 1.0, done["last_line"]
    rows = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert (
        rows[started["run"]]["status"] == "finished" and rows[started["run"]]["recipe"] == "abn-maps-finetune"
    )


def test_a_job_can_be_cancelled(client: TestClient):
    client.get("/api/edit", params={"id": "abn", "index": 0})
    started = client.post("/api/jobs", json={"kind": "finetune", "id": "abn", "steps": 100000}).json()
    assert client.delete(f"/api/jobs/{started['id']}").json()["status"] in ("cancelling", "cancelled")
    assert wait_for(client, started["id"], ("cancelled",), seconds=60)["status"] == "cancelled"
    assert client.delete("/api/jobs/999").status_code == 404


def test_an_explanation_job_adds_its_pictures_to_the_run(client: TestClient, runs: Path):
    started = client.post("/api/jobs", json={"kind": "explain", "id": "abn", "limit": 4}).json()
    assert started["title"] == "explain abn (4 test examples)" and started["progress"] == 0.0
    done = wait_for(client, started["id"], ("finished", "failed"))
    assert done["status"] == "finished" and done["progress"] == 1.0, done["last_line"]
    (picture,) = [
        f for f in client.get("/api/run", params={"id": "abn"}).json()["figures"] if "explain" in f["caption"]
    ]
    assert picture["path"].startswith("explanations/") and (runs / "abn" / picture["path"]).is_file()
    bad = client.post("/api/jobs", json={"kind": "explain", "id": "abn", "limit": 0})
    assert bad.status_code == 422


def test_a_job_that_ignores_ctrl_c_is_terminated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A child inherits SIGINT ignored from its parent (as under some test runners and shells):
    the cancel goes on to SIGTERM after the grace period instead of hanging in "cancelling"."""
    import signal

    from attnlab.explorer import jobs as jobs_module

    monkeypatch.setattr(jobs_module, "GRACE_S", 0.5)
    jobs = jobs_module.Jobs(tmp_path)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        args = ["run", "demo", "--trainer.max_steps", "100000", "--run-dir", str(tmp_path / "d")]
        job = jobs.start("demo", args, tmp_path / "d", 100000)
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(1.0)
    jobs.cancel(job.id)
    deadline = time.monotonic() + 30
    while job.status() != "cancelled":
        assert time.monotonic() < deadline, job.status()
        time.sleep(0.2)
    assert job.process.returncode != 0
