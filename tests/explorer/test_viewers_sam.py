"""The SAM viewer's answers (sam-cells and a prompt-tuning run on it), checked against SAM run
directly on the same test image and box: the thresholded mask, SAM's predicted IoU, the IoU with
the true mask computed by hand, the mask token's final attention, iterative refinement, a box error
drawn as the task's test metrics draw it; and its one-line refusal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from attnlab.explain.capture import capture
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from attnlab.models.sam.boxes import jitter_boxes
from attnlab.models.sam.iterative import IterativeConfig, iterative_inference
from attnlab.models.sam.transforms import scale_boxes
from tests.explorer.conftest import view

SMALL = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false",
         "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--data.batch_size", "2",
         "--data.eval_batch_size", "2", "--data.val_size", "2", "--data.test_size", "4", "--data.size", "64",
         "--task.max_boxes", "4", "--task.eval_jitter", "[0.0, 0.2]"]  # fmt: skip
FINAL = "mask_decoder.transformer.final_attn_token_to_image"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sam-cells (64 px images, a 64 px encoder) and a prompt-tuning run on it, 2 steps each."""
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("sam")
    assert main(["run", "sam-cells", "--run-dir", str(root / "sam"), *SMALL, "--model.img_size", "64"]) == 0
    base = ["--model.base.init_from", str(root / "sam")]
    assert main(["run", "sam_prompt_tuning-cells", "--run-dir", str(root / "pt"), *SMALL, *base]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def shown_map(got: dict, name: str) -> torch.Tensor:
    (chosen,) = [m for m in got["maps"] if m["name"] == name]
    return torch.tensor(chosen["heads"], dtype=torch.float64).view(len(chosen["heads"]), *chosen["shape"])


def direct(sam, image: torch.Tensor, box: torch.Tensor):
    """SAM on one image (3, H, W) and one box (4,): the mask (H, W) bool, predicted IoU, final
    token-to-image attention (heads, hw), all from its forward."""
    size = (image.shape[-2], image.shape[-1])
    x, _ = sam.preprocess(image[None])
    with torch.no_grad(), capture(sam, layers=[FINAL]) as record:
        out = sam(x, boxes=scale_boxes(box[None], size, sam.config.img_size))
        logits = sam.postprocess(out.masks, size)[0, 0]
    return logits > 0, float(out.iou_predictions[0, 0]), record[FINAL][0, :, 1]  # query 1: mask token 0


def note(got: dict, start: str) -> str:
    (line,) = [n for n in got["notes"] if n.startswith(start)]
    return line


@pytest.mark.parametrize("run", ["sam", "pt"])
def test_the_first_cells_mask_iou_and_attention_are_sams_own(client: TestClient, runs: Path, run: str):
    got = view(client, run, index=1)
    loaded = load_run(runs / run)
    cell = loaded.data.dataset("test")[1]  # the same test image, taken from the dataset
    sam = loaded.task.sam
    mask, predicted_iou, attention = direct(sam, cell.image, cell.boxes[0])
    assert got["input"]["kind"] == "image" and got["input"]["shape"] == [64, 64]
    assert torch.equal(shown_map(got, "cell 1: predicted mask")[0].bool(), mask)
    assert torch.equal(shown_map(got, "cell 1: true mask")[0].bool(), cell.masks[0])
    assert got["prediction"][0]["p"] == pytest.approx(predicted_iou, abs=1e-4)
    iou = float((mask & cell.masks[0]).sum() / (mask | cell.masks[0]).sum())
    line = note(got, "cell 1: box")
    assert line.startswith(f"cell 1: box ({', '.join(f'{int(v)}' for v in cell.boxes[0])})")
    assert float(re.search(r"IoU with the true mask ([\d.]+)", line).group(1)) == pytest.approx(iou, abs=5e-4)
    shown = shown_map(got, "cell 1: mask token to image, final")
    assert shown.shape == (attention.shape[0], 8, 8)  # 64 px, patch 8
    for head, expected in zip(shown, attention, strict=True):
        e = expected.double()
        assert head.flatten() == pytest.approx((e - e.min()) / (e.max() - e.min()), abs=1e-4)
    assert ("prompt-tuned" in got["notes"][0]) == (run == "pt")


def test_iterative_refinement_shows_each_pass_and_ends_on_its_mask(client: TestClient, runs: Path):
    got = view(client, "sam", index=2)
    loaded = load_run(runs / "sam")
    cell = loaded.data.dataset("test")[2]
    result = iterative_inference(
        loaded.task.sam, cell.image, cell.boxes[:1], IterativeConfig(threshold=0.05, max_iterations=5)
    )  # the recipe's
    passes = int(result.iterations[0])
    names = [m["name"] for m in got["maps"] if m["name"].startswith("cell 1: iteration")]
    assert names == [f"cell 1: iteration {t} mask" for t in range(2, passes + 1)]
    last = shown_map(got, f"cell 1: iteration {passes} mask" if passes > 1 else "cell 1: predicted mask")
    assert torch.equal(last[0].bool(), result.masks[0])
    assert f"iterative refinement, {passes} passes" in note(got, "cell 1: iterative")


def test_a_box_error_is_the_one_the_test_metrics_drew(client: TestClient, runs: Path):
    got = view(client, "sam", index=3, method="box error 20%")
    assert got["methods"] == ["box error 20%"]
    loaded = load_run(runs / "sam")
    cell = loaded.data.dataset("test")[3]
    gen = torch.Generator().manual_seed(3 * 1_000 + 20)  # as SamTask.metrics seeds image 3 at f = 0.2
    box = jitter_boxes(cell.boxes.float(), 0.2, (64, 64), gen)[0]
    assert not torch.equal(box, cell.boxes[0].float())
    text = re.search(r"cell 1: box \(([^)]*)\)", note(got, "cell 1: box")).group(1)
    assert [float(v) for v in text.split(", ")] == pytest.approx(box.tolist(), abs=0.051)  # 1 decimal
    mask, predicted_iou, _ = direct(loaded.task.sam, cell.image, box)
    assert torch.equal(shown_map(got, "cell 1: predicted mask")[0].bool(), mask)
    assert got["prediction"][0]["p"] == pytest.approx(predicted_iou, abs=1e-4)


def test_a_method_that_is_no_box_error_is_one_line(client: TestClient):
    response = client.get("/api/view", params={"id": "sam", "method": "gradcam"})
    assert response.status_code == 422
    assert "'gradcam' is not a box error this run is measured at (box error 20%)" in response.json()["detail"]
