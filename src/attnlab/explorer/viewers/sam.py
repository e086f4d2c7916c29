"""The viewer of SAM runs on cell images (the ``sam`` task; seed 004): for the first few cells of a
test image, the mask SAM predicts from the cell's box, the true mask, their IoU beside SAM's own
predicted IoU, each pass of iterative box refinement, and the mask token's attention over the
image embedding in every token-to-image attention of the mask decoder's two-way transformer.

The box is the cell's true box, or on request ("box error 20%") that box with the task's evaluation
jitter, drawn with the same seed as its test metrics (so the boxes are the ones those metrics
measured)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from attnlab.data.datamodule import DataModule
from attnlab.explain.capture import capture
from attnlab.explorer.pictures import rounded, unit
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable, input_picture
from attnlab.models.sam.boxes import jitter_boxes
from attnlab.models.sam.iterative import IterativeResult, binary_masks, iterative_inference
from attnlab.models.sam.sam import Sam
from attnlab.models.sam.transforms import scale_boxes
from attnlab.models.sam.tuning import SamTuning
from attnlab.train.sam import SamTask, boxes_as_masks

MAX_CELLS = 3  # cells of an image shown (each adds its masks and attention maps to the list)
MASK_TOKEN = 1  # the decoder's tokens are [IoU, mask 0 (the single output), masks 1-3, prompts]


def cell_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """The first test images with their cells: image (3, H, W) in 0-255, masks (K, H, W) bool,
    boxes (K, 4) xyxy and the image's index in the split (it seeds the box jitter)."""
    test = data.dataset("test")
    count = min(MAX_EXAMPLES, len(test))  # type: ignore[arg-type]
    cells = [test[i] for i in range(count)]
    return [
        {"image": c.image, "masks": c.masks, "boxes": c.boxes, "index": torch.tensor(c.index)}  # type: ignore[attr-defined]
        for c in cells
    ]


def box_errors(task: SamTask) -> dict[str, float]:
    """The box errors the run is measured at, as the page offers them: "box error 20%" -> 0.2."""
    return {f"box error {round(100 * f)}%": f for f in task.eval_jitter if f > 0}


def _prompts(
    task: SamTask, example: dict[str, torch.Tensor], method: str | None
) -> tuple[torch.Tensor, float]:
    """The boxes the cells are prompted with (K, 4) and their error fraction."""
    boxes, size = example["boxes"].float(), tuple(example["image"].shape[-2:])
    if method is None:
        return boxes, 0.0
    errors = box_errors(task)
    if method not in errors:
        offered = ", ".join(errors) or "none: task.eval_jitter has no error above 0"
        raise NotViewable(f"'{method}' is not a box error this run is measured at ({offered})")
    f = errors[method]
    # seeded as SamTask.metrics, over all of the image's boxes, so these are the boxes it measured
    gen = torch.Generator().manual_seed(int(example["index"]) * 1_000 + round(100 * f))
    return jitter_boxes(boxes, f, (int(size[0]), int(size[1])), gen), f


def _token_layers(sam: Sam) -> dict[str, str]:
    """The decoder's token-to-image attentions by qualified name -> how the page names them."""
    prefix = "mask_decoder.transformer"
    names = {
        f"{prefix}.layers.{i}.cross_attn_token_to_image": f"block {i + 1}"
        for i in range(len(sam.mask_decoder.transformer.layers))
    }
    return names | {f"{prefix}.final_attn_token_to_image": "final"}


def _iou(pred: torch.Tensor, true: torch.Tensor) -> float:
    """IoU of two bool masks (H, W) (1 where both are empty, as the task's mask_iou)."""
    union = int((pred | true).sum())
    return int((pred & true).sum()) / union if union else 1.0


def _outline(box: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A box (4,) as a map (H, W): 1 on its one-pixel border, 0.3 inside, 0 outside."""
    inside = boxes_as_masks(box[None], size)[0]
    inner = boxes_as_masks((box + box.new_tensor([1, 1, -1, -1]))[None], size)[0]
    return inside.float() * 0.3 + (inside & ~inner).float() * 0.7


def _box_text(box: torch.Tensor) -> str:
    return "(" + ", ".join(f"{round(float(v), 1):g}" for v in box) + ")"


def _iteration_masks(
    sam: Sam, embedding: torch.Tensor, result: IterativeResult, task: SamTask
) -> torch.Tensor:
    """Every iteration's masks (T, N, H, W) bool, each decoded again from that iteration's prompt
    boxes (iterative_inference keeps only the first and the last); a row past a box's stop repeats
    its last prompt."""
    size = (int(result.masks.shape[-2]), int(result.masks.shape[-1]))
    multimask = task.iterative.multimask_output
    return torch.stack([binary_masks(sam, embedding, boxes, size, multimask) for boxes in result.boxes])


def _attention_grid(sam: Sam, size: tuple[int, int]) -> tuple[int, int]:
    """The rows and columns of the embedding grid that cover the image (the rest is padding;
    a partly covered last row or column counts as covering)."""
    h, w = sam.input_size(size)
    patch = sam.config.img_size // sam.config.grid
    return math.ceil(h / patch), math.ceil(w / patch)


def _tuning_note(task: SamTask) -> list[str]:
    if task.sam.prompt_token is not None:
        return [
            "prompt-tuned: a learned token is appended to every box prompt (the encoder is the base run's)"
        ]
    if isinstance(task.model, SamTuning):
        return ["decoder-tuned: only the mask decoder was trained on the base run's SAM"]
    return []


@dataclass
class Passes:
    """What the decoder gave for N prompt boxes on one image."""

    prompts: torch.Tensor  # (N, 4) xyxy
    predicted: torch.Tensor  # (N, H, W) bool: the single pass's mask
    iou_predictions: torch.Tensor  # (N,) SAM's IoU head, for that mask
    attention: dict[str, torch.Tensor]  # the page's layer name -> (N, heads, h, w) the mask token's row
    refined: IterativeResult
    steps: torch.Tensor  # (T, N, H, W) bool: every iteration's masks


def _run(task: SamTask, image: torch.Tensor, prompts: torch.Tensor) -> Passes:
    """One image (3, H, W) in 0-255 and N boxes: a single pass (attention recorded) and iterative
    refinement."""
    sam, size = task.sam, (int(image.shape[-2]), int(image.shape[-1]))
    layers = _token_layers(sam)
    rows, cols, grid = *_attention_grid(sam, size), sam.config.grid
    with torch.no_grad():
        x, _ = sam.preprocess(image[None])
        embedding = sam.encode(x)  # (1, C, h, w)
        with capture(sam, layers=list(layers)) as record:
            out = sam.decode(embedding, boxes=scale_boxes(prompts, size, sam.config.img_size))
        logits = sam.postprocess(out.masks, size)[:, 0]  # (N, H, W)
        refined = iterative_inference(sam, image, prompts, task.iterative)
        steps = _iteration_masks(sam, embedding, refined, task)
    n = prompts.shape[0]
    attention = {  # (N, heads, hw) -> (N, heads, h, w), the padding's rows and columns cut off
        label: record[name][:, :, MASK_TOKEN].reshape(n, -1, grid, grid)[..., :rows, :cols]
        for name, label in layers.items()
    }
    return Passes(
        prompts, logits > sam.config.mask_threshold, out.iou_predictions[:, 0], attention, refined, steps
    )


def _cell(
    task: SamTask, passes: Passes, truth: torch.Tensor, i: int
) -> tuple[dict[str, Any], list[Any], list[str]]:
    """Cell ``i``'s prediction entry, maps and notes (its true mask ``truth`` (H, W))."""
    k, hw = f"cell {i + 1}", (int(truth.shape[0]), int(truth.shape[1]))
    size = list(hw)
    refined, predicted_iou = passes.refined, float(passes.iou_predictions[i])
    count = int(refined.iterations[i])
    rates = ", ".join(f"{float(r):.3f}" for r in refined.change[1:count, i])
    notes = [
        f"{k}: box {_box_text(passes.prompts[i])}; IoU with the true mask "
        f"{_iou(passes.predicted[i], truth):.3f}, SAM's predicted IoU {predicted_iou:.3f}",
        f"{k}: iterative refinement, {count} passes (change rates {rates or 'none'}; stop below "
        f"{task.iterative.threshold:g}), last box {_box_text(refined.boxes[count - 1, i])}, "
        f"final IoU {_iou(refined.masks[i], truth):.3f}",
    ]
    maps = [
        {"name": f"{k}: predicted mask", "shape": size, "heads": [rounded(passes.predicted[i].float())]},
        {"name": f"{k}: true mask", "shape": size, "heads": [rounded(truth.float())]},
        {"name": f"{k}: box prompt", "shape": size, "heads": [rounded(_outline(passes.prompts[i], hw))]},
    ]
    maps += [
        {
            "name": f"{k}: iteration {t + 1} mask",
            "shape": size,
            "heads": [rounded(passes.steps[t, i].float())],
        }
        for t in range(1, count)
    ]
    maps += [
        {
            "name": f"{k}: mask token to image, {label}",
            "shape": list(a.shape[-2:]),
            "heads": [unit(h) for h in a[i]],
        }
        for label, a in passes.attention.items()
    ]
    prediction = {"label": f"{k} mask, SAM's predicted IoU", "p": round(predicted_iou, 4)}
    return prediction, maps, notes


def view_sam(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """The first cells of a test image, each prompted with its box (module docstring)."""
    task = loaded.task
    assert isinstance(task, SamTask)
    if "image" not in example or "boxes" not in example:
        raise NotViewable("SAM is shown on its test images, prompted with their cells' boxes")
    image, masks = example["image"].float(), example["masks"].bool()  # (3, H, W) 0-255, (K, H, W)
    prompts, fraction = _prompts(task, example, method)
    shown = min(MAX_CELLS, prompts.shape[0])
    answer = {"input": input_picture(image), "target": None, "methods": list(box_errors(task))}
    if shown == 0:
        return answer | {"prediction": [], "maps": [], "notes": ["this image has no cells to prompt"]}
    passes = _run(task, image, prompts[:shown])
    where = f"the true box with {round(100 * fraction)}% error" if fraction else "the true box"
    notes = [
        *_tuning_note(task),
        f"{masks.shape[0]} cells in the image; the first {shown} shown, each from {where}",
    ]
    prediction, maps = [], []
    for i in range(shown):
        entry, cell_maps, cell_notes = _cell(task, passes, masks[i], i)
        prediction.append(entry)
        maps += cell_maps
        notes += cell_notes
    return answer | {"prediction": prediction, "maps": maps, "notes": notes}
