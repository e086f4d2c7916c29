"""The video-QA viewer's answers (Aloe on CLEVRER-lite), checked against the models run directly on the
same example: the answer's and each choice's probabilities, the [CLS] row of every attention layer
over the objects and the words, the objects' weights painted on their pixels, the question and
choices as the dataset wrote them; and its one-line refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from attnlab.data.clevrer import read_annotation
from attnlab.data.clevrer_lite import read_masks
from attnlab.data.clevrer_lite.vocab import ANSWERS
from attnlab.explain.capture import capture
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from tests.explorer.conftest import view

QUICK = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
TINY = ["--data.train_size", "3", "--data.val_size", "1", "--data.test_size", "2", "--data.workers", "1"]
TINY += ["--data.batch_size", "4", "--data.eval_batch_size", "32", "--trainer.limit_val_batches", "1"]
TINY += ["--trainer.limit_test_batches", "1", "--model.width", "16", "--model.depth", "2"]
TINY += ["--model.num_heads", "2", "--model.head_hidden", "16"]
FRAMES = ["--model.channels", "[4, 4, 4]", "--model.object_dim", "8"]


@pytest.fixture(scope="module")
def qa_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Aloe on the oracle's objects and on frame tokens, 2 steps each, on 6 generated videos."""
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("qa_runs")
    cache = ["--data.cache_dir", str(tmp_path_factory.mktemp("clevrer_lite"))]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: threads only add overhead
    try:
        for name, extra in (("oracle", []), ("frames", FRAMES)):
            recipe = f"aloe-{name}-clevrer_lite"
            assert main(["run", recipe, "--run-dir", str(root / name), *QUICK, *TINY, *cache, *extra]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="module")
def client(qa_runs: Path) -> TestClient:
    return TestClient(create_app(qa_runs))


def scene_questions(loaded, scene: int) -> list[dict]:
    """The questions the dataset's file holds for ``scene``, as written."""
    written = json.loads((loaded.data.source.folder.root / "questions.json").read_text())
    return next(v["questions"] for v in written if v["scene_index"] == scene)


def cls_rows(record, run: int = 0) -> torch.Tensor:
    return torch.stack([record[name][run, :, 0] for name in record])  # (layers, heads, keys)


def check_attention(got: dict, rows: torch.Tensor, question: torch.Tensor, objects: int) -> None:
    """The API's raw weights against the captured [CLS] rows: on the objects and on the real words."""
    shown = got["attention"]
    assert torch.tensor(shown["objects"]) == pytest.approx(rows[..., -objects:], abs=1e-4)
    words = rows[..., 1 : 1 + question.shape[0]][..., question != 0]  # the question's words, no padding
    on_words = torch.tensor(shown["on_words"])[..., : words.shape[-1]]
    assert on_words == pytest.approx(words, abs=1e-4) and words.sum() > 0


def test_a_descriptive_question_shows_the_answers_and_cls_attention(client: TestClient, qa_runs: Path):
    got = view(client, "oracle", index=0)
    loaded = load_run(qa_runs / "oracle")
    example = loaded.examples[0]
    objects, question = example["objects"], example["question"]  # (T, K, 16), (L,)
    assert int(example["question_type"]) == 0
    model = loaded.task.model
    with torch.no_grad(), capture(model) as record:
        logits = model(objects[None], question[None]).answer_logits[0]
    top = logits.softmax(-1).topk(5)
    assert [p["label"] for p in got["prediction"]] == [ANSWERS[i] for i in top.indices]
    assert [p["p"] for p in got["prediction"]] == pytest.approx(top.values.tolist(), abs=1e-4)
    T, K = objects.shape[:2]
    rows = cls_rows(record)
    check_attention(got, rows, question, T * K)
    assert got["attention"]["layers"] == list(record) == ["blocks.0.attn", "blocks.1.attn"]
    assert len(got["pictures"]) == 3  # the mean of heads per layer, then every layer and head

    # the question as the dataset wrote it: the scene's first descriptive question
    scene = int(example["scene_index"])
    written = next(q for q in scene_questions(loaded, scene) if q["question_type"] == "descriptive")
    assert got["notes"][0] == f"descriptive question: {written['question']}"
    assert got["target"] == written["answer"] and got["methods"] == []

    # each object's weight (mean of heads) on its visible pixels: 0.2 for the clip's least attended
    # object, 1 for the most, the ground 0
    assert got["input"]["kind"] == "video" and len(got["input"]["frames"]) == T
    folder, indices = loaded.data.source.folder, loaded.data.spec.indices
    ids = torch.from_numpy(read_masks(folder.masks[scene])["ids"][indices].astype(np.int64))  # (T, H, W)
    scene_objects = read_annotation(folder.annotations[scene]).objects
    weights = rows[1, :, -T * K :].mean(0).view(T, K)[:, : len(scene_objects)]  # layer 1, no padding
    shade = 0.2 + 0.8 * (weights - weights.min()) / (weights.max() - weights.min())
    expected = torch.zeros(ids.shape)
    for k, obj in enumerate(scene_objects):
        for t in range(T):
            expected[t][ids[t] == obj.object_id + 1] = shade[t, k]
    shown = got["maps"][1]
    assert shown["name"] == "layer 1: [CLS] to objects" and shown["shape"] == list(ids.shape[1:])
    assert torch.tensor(shown["frames"]) == pytest.approx(expected.flatten(1), abs=1e-4)
    assert (expected > 0).sum() > 100  # objects are in view


def test_a_multiple_choice_question_shows_each_choices_verdict(client: TestClient, qa_runs: Path):
    loaded = load_run(qa_runs / "oracle")
    index = next(i for i, e in enumerate(loaded.examples) if int(e["question_type"]) != 0)
    example = loaded.examples[index]
    got = view(client, "oracle", index=index, method="choice 2")
    objects, question, choices = example["objects"], example["question"], example["choices"]
    model = loaded.task.model
    with torch.no_grad(), capture(model) as record:
        correct = model(objects[None], question[None], choices=choices[None]).choice_logits[0].sigmoid()

    scene = int(example["scene_index"])
    kind = ("descriptive", "explanatory", "predictive", "counterfactual")[int(example["question_type"])]
    written = next(q for q in scene_questions(loaded, scene) if q["question_type"] == kind)
    count = len(written["choices"])
    assert got["notes"][0] == f"{kind} question: {written['question']}"
    assert got["notes"][1 : 1 + count] == [
        f"choice {j + 1}: {c['choice']}" for j, c in enumerate(written["choices"])
    ]
    assert got["target"] == ", ".join(
        f"choice {j + 1}: {c['answer']}" for j, c in enumerate(written["choices"])
    )
    assert got["methods"] == [f"choice {j + 1}" for j in range(count)]
    verdicts = [("correct", p) if p >= 0.5 else ("wrong", 1 - p) for p in correct[:count].tolist()]
    assert [p["label"] for p in got["prediction"]] == [
        f"choice {j + 1}: {v}" for j, (v, _) in enumerate(verdicts)
    ]
    assert [p["p"] for p in got["prediction"]] == pytest.approx([p for _, p in verdicts], abs=1e-4)

    T, K = objects.shape[:2]
    rows = cls_rows(record, run=1)  # the second choice's run
    check_attention(got, rows, question, T * K)
    choice_words = rows[..., 1 + question.shape[0] : 1 + question.shape[0] + choices.shape[1]][
        ..., choices[1] != 0
    ]
    n = int((question != 0).sum())
    assert torch.tensor(got["attention"]["on_words"])[..., n:] == pytest.approx(choice_words, abs=1e-4)


def test_frame_tokens_tint_each_frame_by_its_weight(client: TestClient, qa_runs: Path):
    got = view(client, "frames", index=1)
    loaded = load_run(qa_runs / "frames")
    example = loaded.examples[1]
    video, question = example["video"], example["question"]  # (T, 3, S, S)
    model = loaded.task.model
    with torch.no_grad(), capture(model) as record:
        logits = model(video[None], question[None]).answer_logits[0]
    assert got["prediction"][0]["p"] == pytest.approx(float(logits.softmax(-1).max()), abs=1e-4)
    T = video.shape[0]
    rows = cls_rows(record)
    check_attention(got, rows, question, T)
    assert len(got["input"]["frames"]) == T and "objects: 0 frame token" in got["notes"]
    for shown, layer in zip(got["maps"], rows, strict=True):
        per_frame = layer[:, -T:].mean(0)  # (T,) the mean of heads
        scaled = (per_frame - per_frame.min()) / (per_frame.max() - per_frame.min())
        assert shown["shape"] == [1, 1] and torch.tensor(shown["frames"]).flatten() == pytest.approx(
            scaled, abs=1e-4
        )


def test_a_cam_method_is_refused_in_one_line(client: TestClient):
    response = client.get("/api/view", params={"id": "oracle", "index": "0", "method": "gradcam"})
    assert response.status_code == 422 and "no CAM methods" in response.json()["detail"]
