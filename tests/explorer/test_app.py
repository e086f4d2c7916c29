"""The explorer's API over run folders: the table (broken runs listed with their reason), a run,
its curves and files, the refusal of every path outside the runs folder, and the token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnlab.errors import RunDirError
from attnlab.explorer.app import TOKEN_HEADER, create_app
from tests.explorer.conftest import LOSS


@pytest.fixture
def client(runs_folder: Path) -> TestClient:
    return TestClient(create_app(runs_folder))


def test_the_table_lists_every_run_newest_first_and_says_why_a_run_is_broken(client: TestClient):
    rows = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in rows] == ["demo/b", "demo/a", "bad-metrics", "no-config", "cut-short"]
    good = rows[0]
    assert (good["recipe"], good["model"], good["dataset"], good["status"]) == (
        "demo",
        "transformer-classifier-tiny",
        "signal-tokens",
        "finished",
    )
    assert good["metrics"] == {"test/acc": 0.95, "test/loss": 0.1} and good["seconds"] == 12.5
    broken = {r["id"]: r["error"] for r in rows if r["status"] == "broken"}
    assert set(broken) == {"bad-metrics", "no-config", "cut-short"}
    assert broken["no-config"] == "config.yaml is missing"
    assert broken["bad-metrics"].startswith("metrics.json is unreadable: ")
    assert broken["cut-short"].startswith("run.json is unreadable: ")


def test_the_table_follows_changes_on_disk(client: TestClient, runs_folder: Path):
    assert client.get("/api/runs").json()["runs"][0]["metrics"]["test/acc"] == 0.95
    (runs_folder / "demo" / "b" / "metrics.json").write_text(json.dumps({"test/acc": 0.5}))
    assert client.get("/api/runs").json()["runs"][0]["metrics"] == {"test/acc": 0.5}


def test_a_run_gives_its_config_metrics_figures_and_checkpoints(client: TestClient):
    run = client.get("/api/run", params={"id": "demo/a"}).json()
    assert "transformer-classifier-tiny" in run["config"]
    assert run["metrics"] == {"test/acc": 0.75, "test/loss": 0.5}
    assert run["figures"] == [{"caption": "Training curves", "path": "figures/curves.png"}]
    assert run["files"] == [{"path": "checkpoints/last.ckpt", "bytes": 1000}]


def test_curves_are_the_logged_scalars(client: TestClient):
    curves = client.get("/api/curves", params={"id": "demo/a"}).json()
    steps, values = zip(*curves["train/loss"], strict=True)
    assert list(steps) == [s for s, _ in LOSS]
    assert values == pytest.approx([v for _, v in LOSS], rel=1e-6)  # stored as float32


def test_a_figure_is_served(client: TestClient):
    response = client.get("/api/file", params={"id": "demo/a", "path": "figures/curves.png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "query",
    [
        "id=demo/a&path=../../../secret.txt",
        "id=demo/a&path=%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "id=demo/a&path=/etc/passwd",
        "id=..&path=secret.txt",
        "id=%2e%2e&path=secret.txt",
        "id=demo/a&path=..%2f..%2f..%2fsecret.txt",
        "id=demo/a&path=figures/../../b/run.json",
        "id=demo&path=a/run.json",  # not a run
        "id=demo/a&path=link",
    ],
)
def test_no_file_outside_the_run_can_be_read(client: TestClient, runs_folder: Path, query: str):
    (runs_folder / "demo" / "a" / "link").symlink_to(runs_folder.parent / "secret.txt")
    response = client.get(f"/api/file?{query}")
    assert response.status_code == 404
    assert "not for the explorer" not in response.text


def test_an_unknown_run_is_a_404_with_its_name(client: TestClient):
    response = client.get("/api/run", params={"id": "nope"})
    assert response.status_code == 404 and response.json()["detail"] == "no run 'nope' in the runs folder"


def test_with_a_token_every_api_request_must_carry_it(runs_folder: Path):
    client = TestClient(create_app(runs_folder, token="s3cret"))
    for path in (
        "/api/runs",
        "/api/run?id=demo/a",
        "/api/curves?id=demo/a",
        "/api/file?id=demo/a&path=report.md",
    ):
        assert client.get(path).status_code == 401, path
    assert client.get("/").status_code == client.get("/static/app.js").status_code == 200  # no data in them
    assert client.get("/api/runs", headers={TOKEN_HEADER: "wrong"}).status_code == 401
    assert client.get("/api/runs", headers={TOKEN_HEADER: "s3cret"}).status_code == 200
    assert client.get("/api/file?id=demo/a&path=figures/curves.png&token=s3cret").status_code == 200


def test_the_page_and_its_assets_are_served(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and "static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_a_missing_runs_folder_is_one_line(tmp_path: Path):
    with pytest.raises(RunDirError, match="no runs folder at"):
        create_app(tmp_path / "missing")


def test_a_cut_log_gives_the_curves_before_the_cut(client: TestClient, runs_folder: Path):
    (events,) = (runs_folder / "demo" / "a" / "tb").glob("events.out.tfevents.*")
    events.write_bytes(events.read_bytes()[:-7])  # the last record cut short, as by a crash
    steps = [step for step, _ in client.get("/api/curves", params={"id": "demo/a"}).json()["train/loss"]]
    assert steps == [s for s, _ in LOSS][:-1]


def test_a_run_without_logs_has_no_curves(client: TestClient, runs_folder: Path):
    shutil.rmtree(runs_folder / "demo" / "a" / "tb")
    assert client.get("/api/curves", params={"id": "demo/a"}).json() == {}
