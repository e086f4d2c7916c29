"""The attention viewer's answers, checked against the models run directly on the same example:
the [CLS] row of each recorded attention layer (demo transformer), ABN's attention branch and a
Grad-CAM map (Fashion-MNIST), SFA's slot masks (sprites); and its one-line refusals."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from attnlab.explain.capture import capture
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from tests.explorer.conftest import scaled, view


@pytest.fixture(scope="module")
def client(trained_runs: Path) -> TestClient:
    return TestClient(create_app(trained_runs))


def test_a_token_transformer_shows_each_layers_cls_row_per_head(client: TestClient, trained_runs: Path):
    got = view(client, "demo", index=3)
    assert got["index"] == 3 and got["count"] == 16 and got["input"]["kind"] == "sequence"
    loaded = load_run(trained_runs / "demo")
    x = loaded.examples[3]["input"]
    with torch.no_grad(), capture(loaded.task.model) as record:
        logits = loaded.task.model(x[None]).logits
    assert [m["name"] for m in got["maps"]] == list(record)
    for shown in got["maps"]:
        weights = record[shown["name"]][0, :, 0, 1:]  # (heads, L): [CLS]'s row, the [CLS] key dropped
        assert shown["shape"] == [1, x.shape[0]] and len(shown["heads"]) == weights.shape[0]
        for head, expected in zip(shown["heads"], weights, strict=True):
            assert torch.tensor(head, dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)
    best = logits.softmax(-1)[0].max()
    assert got["prediction"][0]["p"] == pytest.approx(float(best), abs=1e-4)
    assert got["target"] == str(int(loaded.examples[3]["label"]))


def test_abn_shows_its_attention_branch_and_gradcam_on_request(client: TestClient, trained_runs: Path):
    got = view(client, "abn", index=1)
    assert got["input"]["kind"] == "image" and "gradcam" in got["methods"]
    loaded = load_run(trained_runs / "abn")
    with torch.no_grad():
        out = loaded.task.model(loaded.examples[1]["input"][None])
    (branch,) = got["maps"]  # the branch's M only: its head records M too, but it is no query-key attention
    assert branch["name"] == "attention branch" and branch["shape"] == list(out.attention.shape[-2:])
    assert torch.tensor(branch["heads"][0], dtype=torch.float64) == pytest.approx(
        scaled(out.attention), abs=1e-4
    )
    assert got["prediction"][0]["label"] in loaded.class_names
    cam = view(client, "abn", index=1, method="gradcam")["maps"][0]
    assert cam["name"] == "gradcam" and cam["shape"] == [28, 28] and max(cam["heads"][0]) == 1.0


def test_sfa_shows_every_slots_mask_per_frame(client: TestClient, trained_runs: Path):
    got = view(client, "sfa", index=2)
    frames = got["input"]["frames"]
    assert got["input"]["kind"] == "video" and len(frames) == len(got["recon"]) == 3
    masks = torch.tensor([m["frames"] for m in got["maps"]])  # (K, T, H * W)
    assert masks.shape == (4, 3, 32 * 32) and [m["name"] for m in got["maps"]] == [
        f"slot {k}" for k in range(4)
    ]
    assert masks.sum(0) == pytest.approx(torch.ones(3, 32 * 32), abs=2e-3)  # a softmax over slots, rounded
    loaded = load_run(trained_runs / "sfa")
    with torch.no_grad():
        expected = loaded.task.model(loaded.examples[2]["video"][None]).masks[0, :, :, 0]  # (T, K, H, W)
    assert masks == pytest.approx(expected.permute(1, 0, 2, 3).flatten(2), abs=1e-4)


def test_st_abn_shows_its_spatial_map_per_frame_and_its_temporal_weights(
    client: TestClient, trained_runs: Path
):
    got = view(client, "stabn", index=1)
    loaded = load_run(trained_runs / "stabn")
    video = loaded.examples[1]["input"]  # (3, T, H, W)
    with torch.no_grad():
        out = loaded.task.model(video[None])
    assert got["input"]["kind"] == "video" and len(got["input"]["frames"]) == video.shape[1] == 16
    (spatial,) = got["maps"]
    assert spatial["name"] == "spatial attention M_s" and len(spatial["frames"]) == 16
    for shown, expected in zip(spatial["frames"], out.spatial[0], strict=True):
        assert torch.tensor(shown, dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)
    assert got["temporal"] == pytest.approx(out.temporal[0].tolist(), abs=1e-4)
    assert got["methods"] == []


def test_seq2seq_shows_the_forced_attention_beside_the_known_alignment(
    client: TestClient, trained_runs: Path
):
    got = view(client, "seq2seq", index=2)
    loaded = load_run(trained_runs / "seq2seq")
    example = loaded.examples[2]
    words = int((~example["source_mask"]).sum())
    batch = {k: v[None] for k, v in example.items()}
    with torch.no_grad():
        _, weights = loaded.task.forced_attention(batch)  # (1, T, S)
    forced, known = got["maps"]
    assert got["input"]["kind"] == "matrix" and forced["shape"] == [words + 1, words]  # the words, then EOS
    assert got["input"]["rows"][-1] == "EOS" and len(got["input"]["cols"]) == words
    expected = weights[0, : words + 1, :words]
    assert torch.tensor(forced["heads"][0]) == pytest.approx(expected.flatten(), abs=1e-4)
    reversal = torch.zeros(words + 1, words)
    reversal[torch.arange(words), torch.arange(words - 1, -1, -1)] = 1  # target i <- source L - 1 - i
    assert torch.tensor(known["heads"][0]) == pytest.approx(reversal.flatten())
    assert got["target"].split() == [*got["input"]["cols"][::-1], "EOS"]
    assert got["prediction"][0]["p"] is None


def test_a_lidar_scene_shows_its_points_boxes_and_a_boxs_guided_odam(client: TestClient, trained_runs: Path):
    from attnlab.data.kitti import lidar_box_corners
    from attnlab.explain.points import explain_boxes

    got = view(client, "pointpillars", index=1)
    loaded = load_run(trained_runs / "pointpillars")
    scene = loaded.examples[1]
    with torch.no_grad():
        (found,) = loaded.task.model([scene["points"]]).detections
    shown = got["input"]
    assert shown["kind"] == "points" and len(shown["points"]) == min(len(scene["points"]), 20_000)
    assert shown["points"][0] == pytest.approx(scene["points"][0, :3].tolist(), abs=0.006)  # 2 decimals
    truth = lidar_box_corners(scene["boxes"].double().numpy())
    assert np.array([b["corners"] for b in shown["truth"]]) == pytest.approx(truth, abs=0.006)
    assert [b["score"] for b in shown["detections"]] == pytest.approx(found.scores.tolist(), abs=1e-4)
    assert got["maps"] == [] and "guided-odam" in got["methods"]

    explained = view(client, "pointpillars", index=1, method="guided-odam 2")["maps"][0]
    one = type(found)(*(getattr(found, name)[2:3] for name in found.__dataclass_fields__))
    expected = explain_boxes(loaded.task.model, scene["points"], one, methods=("guided-odam",)).maps[
        "guided-odam"
    ][0]
    assert explained["name"] == "guided-odam, box 2"
    assert torch.tensor(explained["values"], dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)


def test_vjepa_shows_its_masks_and_the_error_of_each_predicted_token(client: TestClient, trained_runs: Path):
    from attnlab.objectives.vjepa_masks import sample_masks
    from attnlab.train.vjepa import EVAL_MASK_SEED

    got = view(client, "vjepa", index=1)
    loaded = load_run(trained_runs / "vjepa")
    task, clip = loaded.task, loaded.examples[1]["input"][None]  # (1, C, T, H, W)
    config = task.vjepa.config
    grid = (
        clip.shape[2] // config.tubelet_size,
        clip.shape[3] // config.patch_size,
        clip.shape[4] // config.patch_size,
    )
    torch.manual_seed(EVAL_MASK_SEED)
    enc, pred = sample_masks(grid, task.masks, 1, step=0)
    with torch.no_grad():
        out = task.vjepa(clip, enc, pred)
    assert got["input"]["kind"] == "video" and len(got["input"]["frames"]) == clip.shape[2]
    assert [m["name"] for m in got["maps"]][:2] == [
        "mask 0: context, target",
        "mask 0: prediction error (L1, scaled)",
    ]
    layout = torch.tensor(got["maps"][0]["frames"][:: config.tubelet_size]).flatten()  # one frame per tubelet
    assert set(torch.nonzero(layout == 1.0).flatten().tolist()) == set(pred[0][0].tolist())
    assert set(torch.nonzero(layout == 0.4).flatten().tolist()) == set(enc[0][0].tolist()) - set(
        pred[0][0].tolist()
    )
    error = torch.tensor(got["maps"][1]["frames"][:: config.tubelet_size]).flatten()[pred[0][0]]
    p, t = out.per_mask()[0]
    expected = (p[0] - t[0]).abs().mean(-1)
    assert error == pytest.approx(expected / expected.max(), abs=1e-4)


def test_dino_shows_the_teachers_cls_attention_per_head(client: TestClient, trained_runs: Path):
    got = view(client, "dino", index=2)
    loaded = load_run(trained_runs / "dino")
    x = loaded.examples[2]["input"]
    with torch.no_grad():  # the last block's weights computed from its q, k by hand, as a check of the path
        vit = loaded.task.dino.backbone()
        tokens = vit.prepare_tokens(x[None])
        for block in vit.blocks[:-1]:
            tokens = block(tokens)
        last = vit.blocks[-1]
        h = last.norm1(tokens)
        q = last.attn.q_proj(h).unflatten(-1, (last.attn.num_heads, -1)).transpose(1, 2)  # (1, H, L, Dh)
        k = last.attn.kv_proj(h).unflatten(-1, (2, last.attn.num_heads, -1))[:, :, 0].transpose(1, 2)
        weights = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1)[0, :, 0, 1:]  # (H, N)
    (shown,) = got["maps"]
    assert got["input"]["kind"] == "image" and len(shown["heads"]) == weights.shape[0]
    for head, expected in zip(shown["heads"], weights, strict=True):
        assert torch.tensor(head, dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)
    assert got["target"] in loaded.class_names


def test_mae_shows_what_the_encoder_sees_and_the_reconstruction(client: TestClient, trained_runs: Path):
    from attnlab.models.vit.mae import normalize_patches, patchify

    got = view(client, "mae", index=0)
    loaded = load_run(trained_runs / "mae")
    mae, x = loaded.task.mae, loaded.examples[0]["input"]
    p = mae.config.patch_size
    noise = torch.rand(1, (28 // p) ** 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = mae(x[None], noise=noise)
    assert [c["caption"].split(" (")[0] for c in got["pictures"]] == [
        "what the encoder sees",
        "reconstruction, seen patches pasted back",
    ]
    assert f"{int(out.mask.sum())} of {(28 // p) ** 2} patches gone" in got["pictures"][0]["caption"]
    (error,) = got["maps"]
    expected = (out.pred - normalize_patches(patchify(x[None], p))).square().mean(-1) * out.mask  # norm-pix
    assert torch.tensor(error["heads"][0], dtype=torch.float64) == pytest.approx(scaled(expected), abs=1e-4)


def test_distillation_shows_the_student_and_both_teachers(client: TestClient, trained_runs: Path):
    got = view(client, "distill", index=1)
    loaded = load_run(trained_runs / "distill")
    model, x = loaded.task.model, loaded.examples[1]["input"][None]
    with torch.no_grad():
        out = model(x)
        attention = [
            vit.cls_attention(x)[0]
            for vit in (model.student.vit, model.teacher1.backbone, model.teacher2.backbone)
        ]
    assert [m["name"] for m in got["maps"]] == [
        "student: [CLS] to patches",
        "teacher 1: [CLS] to patches",
        "teacher 2: [CLS] to patches",
    ]
    for shown, expected in zip(got["maps"], attention, strict=True):
        assert torch.tensor(shown["heads"][0], dtype=torch.float64) == pytest.approx(
            scaled(expected[0]), abs=1e-4
        )
    probs = [logits.softmax(-1).max() for logits in (out.logits, out.teacher1_logits, out.teacher2_logits)]
    assert [p["p"] for p in got["prediction"]] == pytest.approx([float(p) for p in probs], abs=1e-4)
    assert got["prediction"][0]["label"].startswith("student: ")


@pytest.mark.parametrize(
    ("run", "params", "message"),
    [
        ("demo", {"index": "99"}, "example 99 is not among the 16 test examples shown"),
        ("demo", {"method": "gradcam"}, "token ids cannot be perturbed"),
        ("sfa", {"method": "gradcam"}, "an object-centric model has none"),
        ("pointpillars", {"method": "guided-odam 999"}, "pick a map (guided-odam, odam, guided-gradcam)"),
        ("pointpillars", {"method": "gradcam 0"}, "pick a map"),
    ],
)
def test_what_cannot_be_shown_is_one_line(client: TestClient, run: str, params: dict, message: str):
    response = client.get("/api/view", params={"id": run} | params)
    assert response.status_code == 422 and message in response.json()["detail"]


def test_an_unfinished_run_says_so(trained_runs: Path, tmp_path: Path):
    root = tmp_path / "runs"
    shutil.copytree(trained_runs / "demo", root / "demo")
    (root / "demo" / "model.safetensors").unlink()
    response = TestClient(create_app(root)).get("/api/view", params={"id": "demo"})
    assert response.status_code == 422 and "the run has not finished" in response.json()["detail"]


def png_bytes(picture: np.ndarray, format: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format=format)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_an_uploaded_picture_is_made_an_input_as_the_test_images(client: TestClient, trained_runs: Path):
    from attnlab.data.fashion_mnist import MEAN, STD

    picture = np.zeros((56, 84, 3), dtype=np.uint8)
    picture[10:50, 20:60] = (200, 180, 160)  # a light block on black, twice the size and wider
    got = client.post("/api/view/upload", json={"id": "abn", "file": png_bytes(picture)})
    assert got.status_code == 200, got.text
    got = got.json()
    grey = Image.fromarray(picture).convert("L").resize((28, 28), Image.Resampling.BOX)
    x = (torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255)[None] - MEAN) / STD  # by hand
    model = load_run(trained_runs / "abn").task.model
    with torch.no_grad():
        out = model(x[None])
    assert got["index"] is None and got["target"] is None and got["input"]["shape"] == [28, 28]
    assert got["prediction"][0]["p"] == pytest.approx(float(out.logits.softmax(-1).max()), abs=1e-4)
    (branch,) = got["maps"]
    assert torch.tensor(branch["heads"][0], dtype=torch.float64) == pytest.approx(
        scaled(out.attention), abs=1e-4
    )
    jpeg = {"id": "abn", "file": png_bytes(picture, "JPEG"), "name": "a.jpg", "method": "gradcam"}
    cam = client.post("/api/view/upload", json=jpeg)
    assert cam.status_code == 200 and cam.json()["maps"][0]["name"] == "gradcam"


@pytest.mark.parametrize(
    ("run", "picture", "message"),
    [
        (
            "abn",
            base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
            "not a PNG, JPEG, GIF, BMP or WebP picture",
        ),
        ("abn", "not base64!", "the upload is not base64"),
        ("demo", "PICTURE", "takes no uploads"),
        ("sfa", "PICTURE", "unsupported video file 'upload.png'"),
    ],
)
def test_an_upload_that_cannot_be_shown_is_one_line(client: TestClient, run: str, picture: str, message: str):
    if picture == "PICTURE":
        picture = png_bytes(np.zeros((8, 8, 3), dtype=np.uint8))
    response = client.post("/api/view/upload", json={"id": run, "file": picture})
    assert response.status_code == 422 and message in response.json()["detail"]
