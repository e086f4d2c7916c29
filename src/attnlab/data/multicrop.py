"""DINO's multi-crop augmentation on tensors: 2 global crops and N local crops of one image.

Paper: Caron et al. 2021, arXiv:2104.14294 (Sec. 3.1, multi-crop after Caron et al. 2020, SwAV).
Reference: facebookresearch/dino ``main_dino.py`` (``DataAugmentationDINO``) and ``utils.py``
(``GaussianBlur``, ``Solarization``), which compose torchvision/PIL transforms. Here the same
recipe is written on float tensors with a ``torch.Generator``, so it needs no torchvision and is
reproducible per example:

* every crop: random resized crop (torchvision's sampling: area fraction uniform in ``scale``,
  log aspect ratio uniform in ``log(ratio)``, 10 tries then a centre crop), bicubic resize;
  horizontal flip (p 0.5); colour jitter (p 0.8; brightness 0.4, contrast 0.4, saturation 0.2,
  hue 0.1, in a random order); grayscale (p 0.2);
* global crop 1: Gaussian blur (p 1.0); global crop 2: blur (p 0.1) and solarisation (p 0.2);
  local crops: blur (p 0.5); global crops of ``scale`` (0.4, 1), local ones of (0.05, 0.4).

On grey images (C = 1, Fashion-MNIST) saturation, hue and grayscale change nothing, as
torchvision's do on one-channel images; brightness, contrast, flips, blur and solarisation do.

Deviations: PIL's Gaussian blur is an extended box-blur approximation of a Gaussian of standard
deviation ``radius``; here it is a true separable Gaussian of that standard deviation (kernel to
3 sigma, edges replicated as PIL's box blur clamps them). Resizing is ``F.interpolate``'s bicubic
with antialiasing, clamped to [0, 1] because PIL's 8-bit images cannot overshoot. Normalisation
is optional (``mean``/``std``; the official one is ImageNet's), so a data module can apply its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError, InputError

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, PIL's and torchvision's grayscale weights


@dataclass(frozen=True)
class MultiCropConfig:
    """``DataAugmentationDINO``'s recipe; defaults are the official ImageNet ones."""

    global_size: int = 224
    local_size: int = 96
    local_crops: int = 8  # N; the student sees 2 + N crops
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: tuple[float, float, float] = (1.0, 0.1, 0.5)  # global crop 1, global crop 2, local crops
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels of the resized crop
    solarize_p: tuple[float, float, float] = (0.0, 0.2, 0.0)  # global crop 1, global crop 2, local crops
    solarize_threshold: float = 128 / 255  # PIL inverts values >= 128 of 255
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def check(self) -> None:
        if min(self.global_size, self.local_size) < 1 or self.local_crops < 0:
            raise ConfigError(
                f"multi-crop needs sizes >= 1 and local_crops >= 0, got {self.global_size}, "
                f"{self.local_size}, {self.local_crops}"
            )
        for name in ("global_scale", "local_scale"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1:
                raise ConfigError(f"{name} must satisfy 0 < low <= high <= 1, got ({low}, {high})")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ConfigError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        probabilities = (self.flip_p, self.jitter_p, self.grayscale_p, *self.blur_p, *self.solarize_p)
        if not all(0 <= p <= 1 for p in probabilities):
            raise ConfigError(f"probabilities must be in [0, 1], got {probabilities}")
        if not 0 <= self.hue <= 0.5 or min(self.brightness, self.contrast, self.saturation) < 0:
            raise ConfigError("colour jitter strengths must be >= 0 and hue <= 0.5")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ConfigError(f"blur_sigma must satisfy 0 < low <= high, got {self.blur_sigma}")
        if (self.mean is None) != (self.std is None) or (self.std is not None and min(self.std) <= 0):
            raise ConfigError("mean and std come together, std > 0")


# Fashion-MNIST and other 28-32 px images: crops of the image's own size and a third of it (so a
# patch-4 ViT sees 7x7 and 3x3 grids) and blur up to 1 px, since a 2 px blur of a 28 px image
# erases it where the official 2 px on 224 px only softens.
SMALL_IMAGES = MultiCropConfig(global_size=28, local_size=12, local_crops=6, blur_sigma=(0.1, 1.0))


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return float(torch.empty(1).uniform_(low, high, generator=generator))


def _coin(p: float, generator: torch.Generator) -> bool:
    return float(torch.rand(1, generator=generator)) < p


def sample_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random resized crop, sampled as torchvision's ``RandomResizedCrop``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    # no fit in 10 tries: the largest centre crop whose aspect ratio is within range
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _grey(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) -> (1, H, W) luma; a grey image is its own luma."""
    if image.shape[0] == 1:
        return image
    r, g, b = image
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b)[None]


def _blend(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * image + (1 - factor) * other).clamp(0, 1)


def _shift_hue(image: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the hue of an RGB image (3, H, W) in [0, 1] by ``shift`` turns (HSV round trip)."""
    value, _ = image.max(0)
    chroma = value - image.min(0).values
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    r, g, b = image
    # hue in sixths of a turn, by which channel holds the maximum
    hue = torch.where(
        value == r, ((g - b) / safe) % 6, torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    hue = (hue + shift) % 1.0
    # back to RGB: each channel n is V - C * clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6
    channels = [
        value - chroma * torch.clamp(torch.minimum((n + 6 * hue) % 6, 4 - (n + 6 * hue) % 6), 0, 1)
        for n in (5, 3, 1)
    ]
    return torch.stack(channels)  # (3, H, W)


def colour_jitter(image: torch.Tensor, c: MultiCropConfig, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and hue with random factors, in a random order (torchvision's)."""
    order = torch.randperm(4, generator=generator).tolist()
    b = _uniform(1 - c.brightness, 1 + c.brightness, generator)
    k = _uniform(1 - c.contrast, 1 + c.contrast, generator)
    s = _uniform(1 - c.saturation, 1 + c.saturation, generator)
    h = _uniform(-c.hue, c.hue, generator)
    for op in order:
        if op == 0:
            image = _blend(image, torch.zeros_like(image), b)
        elif op == 1:
            image = _blend(image, _grey(image).mean(), k)
        elif op == 2 and image.shape[0] == 3:
            image = _blend(image, _grey(image), s)
        elif op == 3 and image.shape[0] == 3:
            image = _shift_hue(image, h)
    return image


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian of standard deviation ``sigma`` px, kernel to 3 sigma, edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    out = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")  # (1, C, H + 2r, W + 2r)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # rows
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # columns
    return out[0]


class MultiCrop:
    """(C, H, W) image in [0, 1], C = 1 or 3 -> [global 1, global 2, local 1 .. N], each (C, size, size)."""

    def __init__(self, config: MultiCropConfig) -> None:
        config.check()
        self.config = config

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        self._check(image)
        c = self.config
        crops = [
            self.crop(image, c.global_size, c.global_scale, c.blur_p[0], c.solarize_p[0], generator),
            self.crop(image, c.global_size, c.global_scale, c.blur_p[1], c.solarize_p[1], generator),
        ]
        crops += [
            self.crop(image, c.local_size, c.local_scale, c.blur_p[2], c.solarize_p[2], generator)
            for _ in range(c.local_crops)
        ]
        return crops

    def crop(
        self,
        image: torch.Tensor,
        size: int,
        scale: tuple[float, float],
        blur_p: float,
        solarize_p: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One view: resized crop, flip, jitter, grayscale, blur, solarise, normalise."""
        c = self.config
        top, left, h, w = sample_box(image.shape[1], image.shape[2], scale, c.ratio, generator)
        patch = image[None, :, top : top + h, left : left + w]  # (1, C, h, w)
        view = F.interpolate(
            patch, size=(size, size), mode=c.interpolation, align_corners=False, antialias=True
        )
        view = view[0].clamp(0, 1)  # (C, size, size)
        if _coin(c.flip_p, generator):
            view = view.flip(-1)
        if _coin(c.jitter_p, generator):
            view = colour_jitter(view, c, generator)
        if _coin(c.grayscale_p, generator):
            view = _grey(view).expand_as(view).clone()
        if _coin(blur_p, generator):
            view = gaussian_blur(view, _uniform(c.blur_sigma[0], c.blur_sigma[1], generator))
        if _coin(solarize_p, generator):
            view = torch.where(view >= c.solarize_threshold, 1 - view, view)
        if c.mean is not None and c.std is not None:
            mean = torch.tensor(c.mean, dtype=view.dtype).view(-1, 1, 1)
            std = torch.tensor(c.std, dtype=view.dtype).view(-1, 1, 1)
            view = (view - mean) / std
        return view

    def _check(self, image: torch.Tensor) -> None:
        if image.dim() != 3 or image.shape[0] not in (1, 3) or not image.is_floating_point():
            raise InputError(
                "multi-crop expects a float (C, H, W) image with C = 1 or 3, "
                f"got {image.dtype} {tuple(image.shape)}"
            )
        if image.numel() and (image.min() < 0 or image.max() > 1):
            raise InputError(
                "multi-crop expects values in [0, 1] (before normalisation), "
                f"got [{float(image.min()):.3g}, {float(image.max()):.3g}]"
            )
        c = self.config
        if c.mean is not None and len(c.mean) != image.shape[0]:
            raise InputError(f"mean/std have {len(c.mean)} channels, the image {image.shape[0]}")


def collate_crops(samples: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Examples' crop lists -> one (B, C, size, size) batch per crop, in crop order (crop-major once
    concatenated, the order :class:`attnlab.objectives.dino.DINOLoss` expects)."""
    counts = {len(crops) for crops in samples}
    if len(counts) != 1:
        raise InputError(f"every example must have the same number of crops, got {sorted(counts)}")
    return [torch.stack(views) for views in zip(*samples, strict=True)]
