"""Uploaded videos, signals and point clouds, made examples as each run's test examples are made and
shown by the run's viewer: checked against the models run directly on the same decoded files."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from attnlab.data.uploads import clip_frames
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run


@pytest.fixture(scope="module")
def client(trained_runs: Path) -> TestClient:
    return TestClient(create_app(trained_runs))


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def upload(client: TestClient, run: str, data: bytes, name: str, method: str | None = None) -> dict:
    body = {"id": run, "file": encoded(data), "name": name} | ({"method": method} if method else {})
    response = client.post("/api/view/upload", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def moving_square(frames: int, size: int = 40) -> np.ndarray:
    """(T, size, size, 3) uint8: a red square moving right over grey."""
    video = np.full((frames, size, size, 3), 90, dtype=np.uint8)
    for t in range(frames):
        video[t, 10:22, 2 + 2 * t : 14 + 2 * t] = (230, 40, 40)
    return video


def gif(video: np.ndarray) -> bytes:
    pictures = [Image.fromarray(f) for f in video]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    """The GIF's frames as PIL decodes them (the palette's colours)."""
    with Image.open(io.BytesIO(data)) as image:
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)


def test_a_video_shows_an_object_centric_models_slots(client: TestClient, trained_runs: Path):
    data = gif(moving_square(9))
    got = upload(client, "sfa", data, "clip.gif")
    loaded = load_run(trained_runs / "sfa")
    t, _, size, _ = loaded.examples[0]["video"].shape
    clip = clip_frames(decoded(data), t, size)  # (T, 3, S, S)
    with torch.no_grad():
        out = loaded.task.model(clip[None])
    assert got["index"] is None and got["upload"]["kind"] == "video" and len(got["input"]["frames"]) == t
    slot0 = torch.tensor(got["maps"][0]["frames"][0])
    assert slot0 == pytest.approx(out.masks[0, 0, 0, 0].flatten(), abs=1e-4)


def test_a_video_shows_st_abns_spatial_and_temporal_attention(client: TestClient, trained_runs: Path):
    data = gif(moving_square(20))
    got = upload(client, "stabn", data, "clip.gif")
    loaded = load_run(trained_runs / "stabn")
    _, t, size, _ = loaded.examples[0]["input"].shape  # (3, T, S, S)
    x = clip_frames(decoded(data), t, size).transpose(0, 1)  # (3, T, S, S)
    with torch.no_grad():
        out = loaded.task.model(x[None])
    assert got["prediction"][0]["p"] == pytest.approx(float(out.logits.softmax(-1).max()), abs=1e-4)
    assert got["temporal"] == pytest.approx(out.temporal[0].tolist(), abs=1e-4)


def test_a_video_for_vjepa_is_grey_and_normalised(client: TestClient, trained_runs: Path):
    got = upload(client, "vjepa", gif(moving_square(12)), "clip.gif")
    frames = load_run(trained_runs / "vjepa").examples[0]["input"].shape[1]
    assert len(got["input"]["frames"]) == frames and got["maps"]


def test_a_csv_signal_shows_the_san1d_attention_along_it(client: TestClient, trained_runs: Path):
    steps = np.arange(100) / 10
    signal = np.stack([np.sin(steps * (c + 1)) for c in range(6)])  # (6, 100)
    csv = "\n".join(",".join(f"{v:.6f}" for v in row) for row in signal.T).encode()
    got = upload(client, "san1d", csv, "walk.csv")
    loaded = load_run(trained_runs / "san1d")
    rounded = np.array([[float(f"{v:.6f}") for v in row] for row in signal])
    x = torch.from_numpy((rounded - loaded.data.mean) / loaded.data.std).float()  # type: ignore[attr-defined]
    with torch.no_grad():
        out = loaded.task.model(x[None])
    assert got["input"]["kind"] == "sequence" and got["input"]["shape"] == [6, 100]
    assert got["prediction"][0]["p"] == pytest.approx(float(out.logits.softmax(-1).max()), abs=1e-4)
    blocks = [m for m in got["maps"] if m["name"].endswith("attention received")]
    assert len(blocks) == 3 and all(m["shape"] == [1, 100] for m in blocks)


def test_a_kitti_bin_scan_shows_the_detectors_boxes(client: TestClient, trained_runs: Path):
    rng = np.random.default_rng(0)
    inside = np.column_stack([rng.uniform(2, 30, 500), rng.uniform(-15, 15, 500), rng.uniform(-2, 0, 500)])
    outside = np.array([[-5.0, 0.0, -1.0], [100.0, 0.0, -1.0]])  # behind and beyond the run's range
    points = np.column_stack([np.vstack([inside, outside]), rng.uniform(0, 1, 502)]).astype("<f4")
    got = upload(client, "pointpillars", points.tobytes(), "scan.bin")
    loaded = load_run(trained_runs / "pointpillars")
    with torch.no_grad():
        (found,) = loaded.task.model([torch.from_numpy(points[:500])]).detections
    assert len(got["input"]["points"]) == 500 and got["input"]["truth"] == []
    assert [d["score"] for d in got["input"]["detections"]] == pytest.approx(found.scores.tolist(), abs=1e-3)
    explained = upload(client, "pointpillars", points.tobytes(), "scan.bin", method="odam 0")
    assert explained["maps"][0]["name"] == "odam, box 0"


@pytest.mark.parametrize(
    ("run", "data", "name", "message"),
    [
        ("sfa", b"1,2\n", "clip.csv", "unsupported video file 'clip.csv'"),
        ("stabn", "SHORT", "clip.gif", "the video has 3 frames; this run's clips have"),
        ("san1d", b"1,2\n3,4\n", "walk.csv", "the signal has 2 channels; BasicMotions's series have 6"),
        ("san1d", b"1,2,3,4,5,6\n" * 10, "walk.csv", "the signal has 10 steps; this run needs at least 64"),
        ("pointpillars", np.array([[-9, 0, 0, 0]], "<f4").tobytes(), "scan.bin", "none of the 1 points"),
        ("abn", b"1,2\n", "walk.csv", "not a PNG, JPEG, GIF, BMP or WebP picture"),
    ],
)
def test_uploads_that_do_not_fit_the_run_are_one_line(
    client: TestClient, run: str, data: bytes | str, name: str, message: str
):
    if data == "SHORT":
        data = gif(moving_square(3))
    assert isinstance(data, bytes)
    response = client.post("/api/view/upload", json={"id": run, "file": encoded(data), "name": name})
    assert response.status_code == 422 and message in response.json()["detail"]
