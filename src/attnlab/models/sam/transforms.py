"""SAM's pre- and post-processing: longest-side resize, normalisation, padding, and mask logits
upscaled and cropped back to the original image.

Reference: facebookresearch/segment-anything ``utils/transforms.py`` (``ResizeLongestSide``) and
``modeling/sam.py`` (``preprocess``, ``postprocess_masks``).

An image of size (H, W) is resized so that its longer side is ``img_size`` (the shorter one
``int(side * scale + 0.5)``), normalised with the ImageNet mean and std in 0-255 units and
zero-padded bottom-right to ``img_size`` x ``img_size``. Prompts in original pixel
coordinates are scaled by the same factors. Low-resolution mask logits (4h x 4w) are upscaled
bilinearly to ``img_size``, cropped to the resized image, and upscaled again to (H, W).

Deviations: images are resized with ``F.interpolate(bilinear, antialias=True)``, the official
torch path (``apply_image_torch``); the official numpy path (``SamPredictor.set_image``) resizes
uint8 arrays with PIL instead, which differs by rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.errors import InputError

PIXEL_MEAN = (123.675, 116.28, 103.53)  # ImageNet, in 0-255 units
PIXEL_STD = (58.395, 57.12, 57.375)


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the longer side ``long_side`` and the aspect ratio kept (rounded half up)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(images: torch.Tensor, long_side: int) -> torch.Tensor:
    """(B, C, H, W) float images -> (B, C, h, w) with max(h, w) == ``long_side``."""
    if images.dim() != 4 or not images.is_floating_point():
        raise InputError(f"images must be float (B, C, H, W), got {images.dtype} {tuple(images.shape)}")
    size = resized_shape(images.shape[-2], images.shape[-1], long_side)
    if size == tuple(images.shape[-2:]):
        return images
    return F.interpolate(images, size, mode="bilinear", align_corners=False, antialias=True)


def scale_coords(coords: torch.Tensor, original: tuple[int, int], long_side: int) -> torch.Tensor:
    """x, y pixel coordinates (..., 2) in an (H, W) image -> in its resized copy."""
    h, w = resized_shape(original[0], original[1], long_side)
    factor = coords.new_tensor([w / original[1], h / original[0]])
    return coords * factor


def scale_boxes(boxes: torch.Tensor, original: tuple[int, int], long_side: int) -> torch.Tensor:
    """xyxy boxes (..., 4) in an (H, W) image -> in its resized copy."""
    return scale_coords(boxes.reshape(*boxes.shape[:-1], 2, 2), original, long_side).reshape(boxes.shape)


def normalize_and_pad(images: torch.Tensor, img_size: int) -> torch.Tensor:
    """(B, 3, h, w) images in 0-255 (h, w <= img_size) -> (B, 3, img_size, img_size), normalised, padded."""
    if images.dim() != 4 or images.shape[1] != len(PIXEL_MEAN):
        raise InputError(f"SAM takes RGB images (B, 3, H, W), got {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if h > img_size or w > img_size:
        raise InputError(
            f"images are {h}x{w}, larger than the encoder's {img_size}: resize_longest_side first"
        )
    mean = images.new_tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(PIXEL_STD).view(1, 3, 1, 1)
    return F.pad((images - mean) / std, (0, img_size - w, 0, img_size - h))


def postprocess_masks(
    masks: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int], img_size: int
) -> torch.Tensor:
    """Low-res logits (B, M, 4h, 4w) -> logits (B, M, H, W) of the original image.

    ``input_size``: the resized image's (h, w) inside the padded ``img_size`` square."""
    masks = F.interpolate(masks, (img_size, img_size), mode="bilinear", align_corners=False)
    masks = masks[..., : input_size[0], : input_size[1]]
    return F.interpolate(masks, original_size, mode="bilinear", align_corners=False)
