"""Electron-microscopy cell images with instance masks: a generator that needs no download, and a
loader for the TIFF stacks of the datasets seed 004 evaluates on (ISBI 2012, EPFL EM).

Generated images (:func:`generate_em_image`) imitate serial-section EM of tissue: cells tile the
image like the ISBI 2012 neuron sections, so neighbours touch and are separated only by a dark
membrane. Cells are the regions of a power (weighted Voronoi) diagram on a noise-warped plane,
which gives varied sizes and irregular, curved outlines; each cell has its own grey level and a
low-frequency texture, and holds organelles (round dark vesicles, elongated mitochondria with a
lighter rim). The image is blurred (the microscope's point-spread) and gets Gaussian noise. Image
``i`` of a split is a pure function of ``(seed, i)``. Labels: 0 membrane (and cells smaller than
``min_area``, too small to prompt), 1..K the cells.

Real data (:func:`load_tiff_pair`): an image stack (N, H, W) and a label stack in one of the two
forms these datasets ship: ISBI 2012's binary membrane maps (255 cell interior, 0 membrane) and
EPFL EM's binary mitochondria masks (255 mitochondrion) become instances by 4-connected
components of the foreground; a stack with more than two values is taken as instance labels.
Reading TIFF needs the ``segment`` extra (``tifffile``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from attnlab.data._registry import register_datamodule
from attnlab.data.datamodule import DataModule, Split
from attnlab.errors import ConfigError, InputError
from attnlab.models.sam.boxes import masks_to_boxes


@dataclass(frozen=True)
class EMStyle:
    """What the generated images look like; sizes are in pixels of a ``size`` x ``size`` image."""

    size: int = 128
    cells: tuple[int, int] = (12, 24)  # cells per image, drawn uniformly
    membrane: float = 1.6  # half-width of the dark membrane
    warp: float = 6.0  # amplitude of the plane's warping (curved outlines)
    organelles: tuple[int, int] = (0, 3)  # per cell
    blur: float = 0.8  # Gaussian sigma
    noise: float = 10.0  # grey levels, std
    min_area: int = 30  # smaller cells are labelled 0


def _smooth_noise(gen: torch.Generator, size: int, cells: int) -> torch.Tensor:
    """Noise with ~``cells`` independent values per side, bilinearly upsampled: (size, size) in ~N(0, 1)."""
    coarse = torch.randn(1, 1, cells + 1, cells + 1, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)[0, 0]


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(image[None, None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0]


def _tessellate(gen: torch.Generator, style: EMStyle) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell index per pixel (S, S) and the distance to the nearest cell boundary (S, S)."""
    S = style.size
    n = int(torch.randint(style.cells[0], style.cells[1] + 1, (), generator=gen))
    centres = (
        torch.rand(n, 2, generator=gen) * (S + 16) - 8
    )  # (n, 2) some just outside: cut cells at the border
    weights = (
        (torch.rand(n, generator=gen) * 0.8 + 0.2) * (S / math.sqrt(n)) ** 2 * 0.5
    )  # power-diagram radii^2
    ys, xs = torch.meshgrid(
        torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij"
    )
    wy = ys + style.warp * _smooth_noise(gen, S, 4)
    wx = xs + style.warp * _smooth_noise(gen, S, 4)
    d2 = (wy[None] - centres[:, 1, None, None]) ** 2 + (
        wx[None] - centres[:, 0, None, None]
    ) ** 2  # (n, S, S)
    power = d2 - weights[:, None, None]
    two = power.topk(2, dim=0, largest=False)
    # distance to the bisector between the two nearest cells, in pixels (power distance / 2 |c1 - c2|)
    c = centres[two.indices]  # (2, S, S, 2)
    gap = (c[0] - c[1]).norm(dim=-1).clamp(min=1e-3)
    boundary = (two.values[1] - two.values[0]) / (2 * gap)
    return two.indices[0], boundary


def generate_em_image(seed: int, style: EMStyle | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A grey EM-like image (S, S) uint8 and its instance labels (S, S) int64 (0 membrane, 1..K cells)."""
    style = style or EMStyle()
    gen = torch.Generator().manual_seed(seed)
    S = style.size
    cell, boundary = _tessellate(gen, style)
    membrane = boundary < style.membrane
    n = int(cell.max()) + 1
    grey = 150 + 50 * torch.rand(n, generator=gen)  # per-cell cytoplasm level
    image = grey[cell] + 12 * _smooth_noise(gen, S, S // 8) + 6 * _smooth_noise(gen, S, S // 3)
    ys, xs = torch.meshgrid(
        torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij"
    )
    for k in range(n):
        inside = (cell == k) & ~membrane
        if int(inside.sum()) < style.min_area:
            continue
        py, px = inside.nonzero(as_tuple=True)
        count = int(torch.randint(style.organelles[0], style.organelles[1] + 1, (), generator=gen))
        for _ in range(count):
            j = int(torch.randint(len(py), (), generator=gen))
            cy, cx = float(py[j]), float(px[j])
            long_axis = float(torch.rand((), generator=gen)) * 4 + 1.5
            elongation = (
                1.0 if float(torch.rand((), generator=gen)) < 0.5 else 2.5
            )  # vesicle or mitochondrion
            angle = float(torch.rand((), generator=gen)) * math.pi
            u = (xs - cx) * math.cos(angle) + (ys - cy) * math.sin(angle)
            v = -(xs - cx) * math.sin(angle) + (ys - cy) * math.cos(angle)
            r = ((u / (long_axis * elongation)) ** 2 + (v / long_axis) ** 2).sqrt()
            organelle = (r < 1) & inside
            rim = (r >= 0.7) & organelle
            image = torch.where(organelle, image - 55, image)
            image = torch.where(rim, image - 25, image)  # a darker double membrane
    image = torch.where(membrane, 55 + 15 * _smooth_noise(gen, S, S // 4), image)
    image = _gaussian_blur(image, style.blur)
    image = image + style.noise * torch.randn(S, S, generator=gen)
    labels = torch.where(membrane, -1, cell)
    return image.round().clamp(0, 255).to(torch.uint8), _relabel(labels, style.min_area)


def _relabel(labels: torch.Tensor, min_area: int) -> torch.Tensor:
    """Labels (-1 background, else region ids) -> 0 background, 1..K regions of >= min_area pixels, in
    order of their first pixel (row-major)."""
    flat = labels.flatten()
    ids, first = np.unique(flat.numpy(), return_index=True)
    order = [int(i) for _, i in sorted(zip(first.tolist(), ids.tolist(), strict=True)) if i >= 0]
    out = torch.zeros_like(labels)
    k = 0
    for region in order:
        inside = labels == region
        if int(inside.sum()) >= min_area:
            k += 1
            out[inside] = k
    return out


def connected_components(foreground: torch.Tensor) -> torch.Tensor:
    """4-connected components of a bool (H, W) image: 0 background, 1..K in order of their first pixel."""
    H, W = foreground.shape
    big = H * W + 1
    ids = torch.arange(1, H * W + 1, dtype=torch.int64).view(H, W)
    label = torch.where(foreground, ids, big)
    while True:  # each pixel takes the smallest label among itself and its 4 neighbours in the foreground
        padded = F.pad(label[None, None].float(), (1, 1, 1, 1), value=float(big))[0, 0].long()
        neighbours = torch.stack(
            [padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
        )
        new = torch.where(foreground, neighbours.amin(dim=0), big)
        if torch.equal(new, label):
            break
        label = new
    return _relabel(torch.where(foreground, label, -1), 1)


def instances_from_labels(label: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One label image (H, W) -> instance ids (H, W) int64: binary maps by connected components of
    the non-zero pixels, anything else as it is (0 background)."""
    t = torch.as_tensor(np.asarray(label)).long()
    if t.dim() != 2:
        raise InputError(f"a label image must be (H, W), got {tuple(t.shape)}")
    if torch.unique(t).numel() <= 2:
        return connected_components(t > 0)
    return t


def load_tiff_pair(images: str | Path, labels: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """An image stack and its label stack (ISBI 2012 / EPFL EM TIFFs) -> (N, H, W) uint8 images and
    (N, H, W) int64 instances (see the module docstring)."""
    try:
        import tifffile
    except ModuleNotFoundError:
        raise ConfigError(
            "reading TIFF stacks needs the 'segment' extra: pip install 'attnlab[segment]'"
        ) from None
    arrays = []
    for path in (Path(images), Path(labels)):
        if not path.is_file():
            raise InputError(f"TIFF file not found: {path}")
        try:
            array = tifffile.imread(path)
        except Exception as err:  # tifffile raises several types for a file that is not a TIFF
            raise InputError(
                f"cannot read {path} as TIFF: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from None
        arrays.append(array[None] if array.ndim == 2 else array)
    image, label = arrays
    if image.ndim != 3:
        raise InputError(f"{images} must hold grey images (N, H, W), got shape {image.shape}")
    if label.shape != image.shape:
        raise InputError(f"{labels} has shape {label.shape}, but the images {images} have {image.shape}")
    if image.dtype != np.uint8:  # 16-bit or float EM: scaled to 0-255 per stack
        lo, hi = float(image.min()), float(image.max())
        image = ((image.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255).round().astype(np.uint8)
    instances = torch.stack([instances_from_labels(slice_) for slice_ in label])
    return torch.from_numpy(np.ascontiguousarray(image)), instances


@dataclass
class CellImage:
    """One image and its cells."""

    image: torch.Tensor  # (3, H, W) float in 0-255 (grey repeated: SAM takes RGB)
    masks: torch.Tensor  # (K, H, W) bool, one per cell
    boxes: torch.Tensor  # (K, 4) xyxy pixel-edge boxes of the masks
    index: int


@dataclass
class CellBatch:
    """B images with ragged numbers of cells (Lightning moves the listed tensors too)."""

    images: torch.Tensor  # (B, 3, H, W)
    masks: list[torch.Tensor]  # B x (K_i, H, W) bool
    boxes: list[torch.Tensor]  # B x (K_i, 4)
    index: torch.Tensor  # (B,)

    @property
    def batch_size(self) -> int:
        return len(self.masks)


def collate_cells(samples: list[CellImage]) -> CellBatch:
    return CellBatch(
        images=torch.stack([s.image for s in samples]),
        masks=[s.masks for s in samples],
        boxes=[s.boxes for s in samples],
        index=torch.tensor([s.index for s in samples]),
    )


def cell_image(image: torch.Tensor, instances: torch.Tensor, index: int) -> CellImage:
    """A grey (H, W) image and instance ids (H, W) -> a :class:`CellImage`."""
    ids = [int(i) for i in torch.unique(instances) if i > 0]
    masks = (
        torch.stack([instances == i for i in ids])
        if ids
        else torch.zeros(0, *instances.shape, dtype=torch.bool)
    )
    return CellImage(
        image=image.float()[None].expand(3, -1, -1).contiguous(),
        masks=masks,
        boxes=masks_to_boxes(masks) if ids else torch.zeros(0, 4),
        index=index,
    )


class GeneratedCells(Dataset[CellImage]):
    def __init__(self, *, style: EMStyle, seed: int, size: int | None) -> None:
        self.style, self.seed, self.size = style, seed, size
        self.procedural = size is None

    def __len__(self) -> int:
        if self.size is None:
            raise TypeError("a procedural dataset has no length")
        return self.size

    def __getitem__(self, index: int) -> CellImage:
        if self.size is not None and not 0 <= index < self.size:
            raise IndexError(index)
        image, labels = generate_em_image(self.seed * 7_919 + index, self.style)
        return cell_image(image, labels, index)


class TiffCells(Dataset[CellImage]):
    def __init__(self, images: torch.Tensor, instances: torch.Tensor) -> None:
        self.images, self.instances = images, instances

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> CellImage:
        return cell_image(self.images[index], self.instances[index], index)


@register_datamodule("em-cells")
class EMCellsData(DataModule):
    """Generated EM cell images (or, with ``images``/``labels``, a TIFF stack whose last ``test_size``
    slices are the test split and the ``val_size`` before them validation)."""

    def __init__(
        self,
        *,
        seed: int,
        size: int = 128,
        images: str | None = None,
        labels: str | None = None,
        val_size: int = 16,
        test_size: int = 32,
        batch_size: int = 4,
        eval_batch_size: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            seed=seed, batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        if (images is None) != (labels is None):
            raise ConfigError("data.images and data.labels come together (an image stack and its labels)")
        if size < 32 or val_size < 1 or test_size < 1:
            raise ConfigError(
                f"em-cells needs size >= 32, val_size and test_size >= 1, got {size}, {val_size}, {test_size}"
            )
        self.style = EMStyle(size=size)
        self.images, self.labels = images, labels
        self.val_size, self.test_size = val_size, test_size

    def collate_fn(self) -> Callable[[list[Any]], Any]:
        return collate_cells

    def build(self, split: Split) -> Dataset[CellImage]:
        if self.images is not None and self.labels is not None:
            images, instances = load_tiff_pair(self.images, self.labels)
            n = images.shape[0]
            if n <= self.val_size + self.test_size:
                raise ConfigError(
                    f"{self.images} has {n} slices: too few for val_size + test_size + training"
                )
            cut = {
                "train": (0, n - self.val_size - self.test_size),
                "val": (n - self.val_size - self.test_size, n - self.test_size),
                "test": (n - self.test_size, n),
            }[split]
            return TiffCells(images[cut[0] : cut[1]], instances[cut[0] : cut[1]])
        offset = {"train": 0, "val": 1_000_003, "test": 2_000_029}[split]  # disjoint streams per split
        size = {"train": None, "val": self.val_size, "test": self.test_size}[split]
        return GeneratedCells(style=self.style, seed=self.seed + offset, size=size)
