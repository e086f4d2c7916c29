"""Seed 004's iterative inference: a mask's bounding box becomes the next prompt until the mask
stops changing.

For one image and N boxes (Funai et al. 2024, section 3.2, eq. 1):

1. ``M_1`` = SAM's mask for the given (possibly wrong-sized) box ``b_1``;
2. ``b_t`` = the bounding box of ``M_{t-1}``; ``M_t`` = SAM's mask for ``b_t``;
3. change rate ``r_t = sum_pixels |M_t - M_{t-1}| / area(b_t)``; box i stops at the first t with
   ``r_t < threshold`` (0.05 in the thesis) or at ``max_iterations``; its answer is its last mask.

The image encoder runs once; every iteration is one batched prompt-encoder + decoder pass over
the boxes still running (those that stopped leave the batch). Masks are binarised on the original
image (logits > ``mask_threshold`` after :meth:`Sam.postprocess`), as the thesis compares
predicted masks. ``area(b_t)`` is the area of the box that prompted ``M_t``, in original pixels
(the thesis writes ``H_b W_b``, "the bbox area"). A box whose mask comes out empty has no next box
and stops there.

Deviation: the thesis does not give a maximum number of iterations; ours is a parameter
(default 10).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import ConfigError, InputError
from attnlab.models.sam.boxes import box_area, check_boxes, masks_to_boxes
from attnlab.models.sam.sam import Sam
from attnlab.models.sam.transforms import scale_boxes


@dataclass(frozen=True)
class IterativeConfig:
    threshold: float = 0.05  # stop when the change rate falls below it
    max_iterations: int = 10  # decoder passes per box, the first included
    multimask_output: bool = False  # True: take the output with the highest predicted IoU

    def check(self) -> None:
        if self.threshold < 0:
            raise ConfigError(f"threshold must be >= 0, got {self.threshold}")
        if self.max_iterations < 1:
            raise ConfigError(f"max_iterations must be >= 1, got {self.max_iterations}")


@dataclass
class IterativeResult:
    masks: torch.Tensor  # (N, H, W) bool: each box's final mask on the original image
    # (T, N, 4) the prompt of each iteration (row 0: the given boxes); after a box stopped, its last
    boxes: torch.Tensor
    change: torch.Tensor  # (T, N) change rate r_t (NaN at t = 0 and after the box stopped)
    iterations: torch.Tensor  # (N,) int64 decoder passes each box took (1 .. max_iterations)
    first_masks: torch.Tensor  # (N, H, W) bool: M_1, the single-pass answer


def binary_masks(
    model: Sam, embedding: torch.Tensor, boxes: torch.Tensor, original: tuple[int, int], multimask: bool
) -> torch.Tensor:
    """Boxes (n, 4) in original pixels -> binary masks (n, H, W)."""
    prompt = scale_boxes(boxes, original, model.config.img_size)
    out = model.decode(embedding, boxes=prompt, multimask_output=multimask)
    logits = out.masks  # (n, M, 4h, 4w)
    if multimask:  # the output the IoU head rates highest, as SamPredictor users do
        best = out.iou_predictions.argmax(dim=1)  # (n,)
        logits = logits[torch.arange(logits.shape[0]), best][:, None]  # (n, 1, 4h, 4w)
    else:
        logits = logits[:, :1]
    full = model.postprocess(logits, original)  # (n, 1, H, W)
    return full[:, 0] > model.config.mask_threshold


@torch.no_grad()
def iterative_inference(
    model: Sam, image: torch.Tensor, boxes: torch.Tensor, config: IterativeConfig | None = None
) -> IterativeResult:
    """Refine ``boxes`` (N, 4) xyxy on ``image`` (3, H, W) in 0-255; see the module docstring."""
    config = config or IterativeConfig()
    config.check()
    if image.dim() != 3:
        raise InputError(f"image must be (3, H, W) in 0-255, got {tuple(image.shape)}")
    original = (int(image.shape[1]), int(image.shape[2]))
    check_boxes(boxes, original)
    N = boxes.shape[0]
    x, _ = model.preprocess(image[None])
    embedding = model.encode(x.to(next(model.parameters()).dtype))  # (1, C, h, w): once
    boxes = boxes.float().to(image.device)
    masks = binary_masks(model, embedding, boxes, original, config.multimask_output)  # (N, H, W)
    first = masks.clone()
    device = masks.device
    history, changes = [boxes.clone()], [torch.full((N,), float("nan"), device=device)]
    iterations = torch.ones(N, dtype=torch.long, device=device)
    running = masks.flatten(1).any(dim=1)  # an empty mask has no box to continue from
    current = boxes.clone()
    for _ in range(config.max_iterations - 1):
        change = torch.full((N,), float("nan"), device=device)
        if running.any():
            idx = running.nonzero()[:, 0]
            current[idx] = masks_to_boxes(masks[idx])  # b_t = box(M_{t-1})
            new = binary_masks(model, embedding, current[idx], original, config.multimask_output)
            diff = (new ^ masks[idx]).flatten(1).sum(dim=1).float()  # sum |M_t - M_{t-1}|
            rate = diff / box_area(current[idx])
            masks[idx] = new
            change[idx] = rate
            iterations[idx] += 1
            done = (rate < config.threshold) | ~new.flatten(1).any(dim=1)
            running[idx[done]] = False
        history.append(current.clone())
        changes.append(change)
        if not running.any():
            break
    return IterativeResult(
        masks=masks,
        boxes=torch.stack(history),
        change=torch.stack(changes),
        iterations=iterations,
        first_masks=first,
    )
