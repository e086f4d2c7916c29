"""The sam task's pieces: the box-as-mask floor by hand, the loss on a batch of generated cells,
and the evaluation metrics' names and ranges."""

import pytest
import torch

from attnlab.data.em_cells import EMCellsData, collate_cells
from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.models._submodel import SubModel
from attnlab.models.sam.boxes import jitter_boxes
from attnlab.models.sam.tuning import SamTuning, SamTuningConfig
from attnlab.runs.config import OptimConfig
from attnlab.train.sam import SamTask, boxes_as_masks


def test_box_as_mask_by_hand():
    masks = boxes_as_masks(torch.tensor([[1.0, 0, 3, 2], [0.5, 0.5, 1.5, 1.5]]), (3, 4))
    expected = torch.zeros(2, 3, 4, dtype=torch.bool)
    expected[0, 0:2, 1:3] = True  # box 1: pixel centres 0.5 and 1.5 lie on its edges, none inside
    assert torch.equal(masks, expected)


def test_loss_and_metrics_on_generated_cells():
    model = create_model("sam-cells", img_size=64, patch_size=8)
    task = SamTask(model=model, optim=OptimConfig(name="adamw", lr=1e-3), max_boxes=3, eval_jitter=(0.0, 0.2))
    data = EMCellsData(seed=0, size=64, val_size=2, test_size=2)
    batch = collate_cells([data.dataset("val")[0], data.dataset("val")[1]])
    terms = task.loss_terms(batch)
    assert set(terms) == {"focal", "dice", "iou"} and all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert model.mask_decoder.iou_token.weight.grad is not None

    class NotTesting:
        testing = False

    task._trainer = NotTesting()  # type: ignore[assignment]
    values = task.metrics(batch)
    assert {"loss", "miou_f0", "miou_f0.2", "box_miou_f0", "box_miou_f0.2"} <= set(values)
    for name, value in values.items():
        assert torch.isfinite(value), name
    assert 0 < values["box_miou_f0"] < 1  # cells are not boxes
    with pytest.raises(ConfigError, match="eval_jitter"):
        SamTask(model=model, optim=OptimConfig(name="adamw", lr=1e-3), eval_jitter=(0.5,))
    with pytest.raises(ConfigError, match=r"task\.train_jitter: probabilities must sum to 1"):
        SamTask(model=model, optim=OptimConfig(name="adamw", lr=1e-3), train_jitter=((0.0, 0.5),))


def test_tuning_copies_the_base_and_trains_only_the_decoder_and_the_token():
    base = create_model("sam-cells")
    tuned = SamTuning(SamTuningConfig(base="sam-cells"), base=base)
    for key, value in base.state_dict().items():
        assert torch.equal(tuned.sam.state_dict()[key], value), key
    trainable = {n.split(".")[1] for n, p in tuned.named_parameters() if p.requires_grad}
    assert trainable == {"mask_decoder", "prompt_token"}
    baseline = SamTuning(
        SamTuningConfig(base="sam-cells", prompt_token_dim=None, train_learned_embedding=True)
    )
    names = {n for n, p in baseline.named_parameters() if p.requires_grad and "mask_decoder" not in n}
    assert names == {f"sam.prompt_encoder.point_embeddings.{i}.weight" for i in range(4)} | {
        "sam.prompt_encoder.not_a_point_embed.weight"
    }
    # a recipe's mapping becomes the SubModel the engine builds (with its weights) and passes as ``base``
    assert SamTuningConfig(base={"init_from": "runs/x"}).base == SubModel(init_from="runs/x")
    with pytest.raises(ConfigError, match=r"model\.base must be a SAM"):
        SamTuning(SamTuningConfig(base="toy-gan"))


def test_prompt_tuning_recipe_runs_on_a_preset_base(tmp_path):
    from attnlab.cli import main

    smoke = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.limit_val_batches", "1"]
    smoke += [
        "--trainer.limit_test_batches",
        "1",
        "--trainer.progress_bar",
        "false",
        "--data.batch_size",
        "2",
    ]
    smoke += ["--data.eval_batch_size", "2", "--data.size", "64", "--model.base", "sam-cells"]
    run = tmp_path / "pt"
    assert main(["run", "sam_prompt_tuning-cells", "--run-dir", str(run), *smoke]) == 0
    assert (run / "report.md").is_file() and (run / "figures" / "iterations.png").is_file()


def test_training_on_exact_boxes_from_the_command_line(monkeypatch):
    import attnlab.train.sam as sam_task
    from attnlab.recipes import recipe_path
    from attnlab.runs.spec import resolve

    spec = resolve(recipe_path("sam-cells"), ["--task.train_jitter", "[[0.0, 1.0]]"])
    model = create_model("sam-cells", img_size=64, patch_size=8)
    task = SamTask(model=model, optim=spec.optim, **spec.task_args)
    assert task.train_jitter == ((0.0, 1.0),)
    seen = []

    def recording(boxes, fractions, size, generator):
        seen.append(fractions.clone())
        return jitter_boxes(boxes, fractions, size, generator)

    monkeypatch.setattr(sam_task, "jitter_boxes", recording)
    data = EMCellsData(seed=0, size=64, val_size=1, test_size=1)
    task.loss_terms(collate_cells([data.dataset("val")[0]]))
    assert seen and all(torch.equal(f, torch.zeros_like(f)) for f in seen)  # every box exact


def test_a_frozen_encoder_encodes_each_training_image_of_a_stack_once(tmp_path, monkeypatch):
    """On a TIFF stack (a finite training set) a tuning run encodes each training image once over
    three epochs (4 images, not 12), and trains the same weights as without the cache."""
    import numpy as np
    from safetensors.torch import load_file

    from attnlab.cli import main

    tifffile = pytest.importorskip("tifffile")
    stack = np.full((7, 64, 64), 200, dtype=np.uint8)
    stack[:, 32], stack[:, :, 20] = 0, 0  # membranes: four cells per slice
    tifffile.imwrite(tmp_path / "v.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "l.tif", stack, photometric="minisblack")
    args = ["--data.images", str(tmp_path / "v.tif"), "--data.labels", str(tmp_path / "l.tif")]
    args += ["--data.val_size", "1", "--data.test_size", "2", "--data.size", "64", "--data.batch_size", "2"]
    args += ["--trainer.max_steps", "6", "--trainer.val_every", "6", "--trainer.progress_bar", "false"]
    args += ["--data.eval_batch_size", "2", "--model.base", "sam-cells"]
    encoded: list[int] = []
    original = SamTask._embeddings

    def counting(self, images):
        if self.training:
            encoded.append(images.shape[0])
        return original(self, images)

    monkeypatch.setattr(SamTask, "_embeddings", counting)
    weights = {}
    for cache in ("true", "false"):
        encoded.clear()
        run = tmp_path / cache
        assert (
            main(
                [
                    "run",
                    "sam_decoder_tuning-cells",
                    "--run-dir",
                    str(run),
                    *args,
                    "--task.cache_embeddings",
                    cache,
                ]
            )
            == 0
        )
        weights[cache] = (load_file(run / "model.safetensors"), sum(encoded))
    (cached, n_cached), (plain, n_plain) = weights["true"], weights["false"]
    assert (n_cached, n_plain) == (4, 12)  # 4 training slices, batches of 2, 6 steps
    for key, value in plain.items():
        torch.testing.assert_close(cached[key], value, rtol=1e-4, atol=1e-5, msg=key)
