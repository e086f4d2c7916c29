"""Pictures people upload: checked and decoded in one place."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from attnlab.errors import InputError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


PICTURE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


def read_picture(data: bytes) -> np.ndarray:
    """Uploaded bytes as (H, W, 3) uint8 RGB; one line for anything else or anything too big."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the upload is {len(data) / 2**20:.1f} MiB; pictures up to {MAX_UPLOAD_BYTES // 2**20} MiB"
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in PICTURE_FORMATS:
                raise InputError(
                    f"unsupported upload type {image.format}: PNG, JPEG, GIF, BMP or WebP pictures"
                )
            if image.width * image.height > 4096 * 4096:
                raise InputError(f"the picture is {image.width}x{image.height} pixels; at most 4096x4096")
            return np.asarray(image.convert("RGB"))
    except (OSError, Image.DecompressionBombError):
        raise InputError("unsupported upload type: not a PNG, JPEG, GIF, BMP or WebP picture") from None
