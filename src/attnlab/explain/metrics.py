"""Quantitative metrics for saliency maps and attributions, batched.

Perturbation curves (the model is run in eval mode under ``torch.no_grad``; its
class scores come from ``score_fn(output)``, the output tensor or its ``logits``
field, exactly as in :mod:`attnlab.explain.cam`; probabilities are their softmax):

* :func:`deletion` / :func:`insertion`: Petsiuk et al. 2018, RISE
  (arXiv:1806.07421). Pixels are ranked by decreasing saliency; after step
  ``k`` of ``steps`` the first ``k * n // steps`` of the ``n`` pixels are
  replaced by the baseline (deletion) or copied from the image into the baseline
  (insertion). The curve is the target-class probability against the removed
  (inserted) fraction, the AUC its trapezoidal integral over [0, 1].
  Deviation: RISE removes a fixed number of pixels per step and plots against
  the step index; we use ``k * n // steps`` pixels and the exact fraction, so
  the AUC is the same integral whether or not ``steps`` divides ``n``.
* :func:`road`: Rong et al. 2022, ROAD (arXiv:2202.00449). The most (MoRF) or
  least (LeRF) relevant fraction of pixels is removed and imputed from its
  neighbours by noisy linear imputation: each removed pixel equals the weighted
  mean of its 8 neighbours (weight 1/6 for the 4 direct ones, 1/12 for the
  diagonal ones, renormalised over the neighbours inside the image), one sparse
  linear system per image solved for all channels, plus Gaussian noise of
  standard deviation ``noise`` on the imputed pixels.

Ranking: ties in saliency are broken by raster order (stable sort), so a constant
map ranks pixels row by row; that is a valid, uninformative ranking, so it is
accepted. Targets default to each image's predicted class on the unperturbed
image (RISE's protocol); pass the labels to get ROAD's accuracies.

Localisation metrics (pure functions of maps and regions):

* :func:`pointing_game`: Zhang et al. 2016 (Excitation Backprop,
  arXiv:1608.00507): a hit when the map's maximum lies within ``tolerance``
  pixels (15 in the paper) of the ground-truth region. Where several pixels share
  the maximum, a hit needs all of them inside, so that ties cannot buy hits; a
  constant map has no maximum to point with and gives NaN (not a hit, not a
  miss): count NaN as a miss (``hits.nan_to_num(0.0).mean()``) to keep every
  example, as the paper does, or ``hits.nanmean()`` to leave them out.
* :func:`energy_in_region`: Wang et al. 2020 (Score-CAM, arXiv:1910.01279)
  energy-based pointing game: the share of the (non-negative) attribution mass
  inside the region. For any shape: (B, H, W) maps, (B, N) point attributions
  with (B, N) masks (the seed's mAPB is its mean), (B, T, H, W) videos.

Regions are boolean masks shaped like the maps, or for (B, H, W) maps boxes
``(x1, y1, x2, y2)`` in pixels, (B, 4) or several per image (B, M, 4, their
union): pixel (row i, column j) is inside when its centre ``(j + 0.5, i + 0.5)``
is, so integer boxes select ``[y1:y2, x1:x2]``.

:func:`inversion_drop`: the accuracy drops of the seed's attention-inversion table
(ST-ABN: spatial, temporal and both attentions replaced by ``1 - M``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError, unknown
from attnlab.explain._checks import Targets, check_class_scores, check_finite, check_inputs
from attnlab.explain.cam import ScoreFn, class_scores, eval_mode, resolve_targets

BASELINES = ("zeros", "blur", "mean")
ORDERS = ("morf", "lerf")
Baseline = str | torch.Tensor
# direct neighbours weigh twice the diagonal ones (ROAD, Sec. 4); they sum to 1 inside the image
_NEIGHBOURS = (
    (-1, 0, 1 / 6),
    (1, 0, 1 / 6),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (-1, -1, 1 / 12),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (1, 1, 1 / 12),
)


@dataclass
class PerturbationCurve:
    """Deletion or insertion curves of a batch and their areas."""

    fractions: torch.Tensor  # (T,) removed/inserted fraction at each step, 0 to 1
    probs: torch.Tensor  # (B, T) target-class probability at each step
    auc: torch.Tensor  # (B,) trapezoidal area under each curve
    targets: torch.Tensor  # (B,) int64 explained classes


@dataclass
class RoadCurve:
    """ROAD curves of a batch: one point per removed fraction."""

    fractions: torch.Tensor  # (F,) removed fractions
    probs: torch.Tensor  # (B, F) target-class probability after removal and imputation
    correct: torch.Tensor  # (B, F) bool: the prediction still equals the target

    @property
    def accuracy(self) -> torch.Tensor:
        """(F,) share of the batch still classified as its target."""
        return self.correct.float().mean(0)


@dataclass(frozen=True)
class InversionDrop:
    """Accuracy lost when attention is inverted (plain minus inverted), as fractions."""

    spatial: float
    temporal: float
    both: float


# ---------------------------------------------------------------- validation


def _check_maps(saliency: torch.Tensor, name: str = "saliency") -> None:
    if not isinstance(saliency, torch.Tensor) or not saliency.is_floating_point():
        kind = saliency.dtype if isinstance(saliency, torch.Tensor) else type(saliency).__name__
        raise InputError(f"{name} must be a floating tensor, got {kind}")
    if saliency.dim() < 2 or saliency.shape[0] == 0 or saliency[0].numel() == 0:
        raise InputError(f"{name} must be a non-empty batch of maps (B, ...), got {tuple(saliency.shape)}")
    check_finite(saliency, f"{name} contains NaN or inf (fix the explanation before scoring it)")


def _check_images(
    model: nn.Module, inputs: torch.Tensor, saliency: torch.Tensor, spatial: tuple[int, ...]
) -> None:
    check_inputs(inputs, model, min_dim=3)
    if inputs.dim() - 2 not in spatial:
        raise InputError(
            f"inputs must have {sorted(spatial)} spatial dims after (B, C), got {tuple(inputs.shape)}"
        )
    _check_maps(saliency)
    if saliency.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise InputError(
            f"saliency {tuple(saliency.shape)} must be (B, *spatial) = "
            f"{(inputs.shape[0], *inputs.shape[2:])} for inputs {tuple(inputs.shape)}; upsample it first"
        )


def _check_positive(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


# ---------------------------------------------------------------- shared pieces


def _ranks(saliency: torch.Tensor, descending: bool) -> torch.Tensor:
    """(B, n) position of each pixel in the removal order; ties keep raster order."""
    flat = saliency.flatten(1)  # (B, n)
    order = torch.sort(flat, dim=1, descending=descending, stable=True).indices
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _resolve(
    model: nn.Module, inputs: torch.Tensor, targets: Targets, score_fn: ScoreFn | None, batch_size: int
) -> torch.Tensor:
    """Targets, defaulting to the prediction on the unperturbed images."""
    parts = [inputs[start : start + batch_size] for start in range(0, inputs.shape[0], batch_size)]
    scores = torch.cat([class_scores(model(part), score_fn, part.shape[0]) for part in parts])  # (B, classes)
    check_class_scores(scores, "the model's scores on the unperturbed inputs")
    return resolve_targets(scores, targets)


MakeImages = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _pair_scores(
    model: nn.Module,
    batch: int,
    points: int,
    make: MakeImages,
    chosen: torch.Tensor,
    score_fn: ScoreFn | None,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Target probability and correctness for every (image, curve point) pair.

    Pairs are enumerated image-major and fed ``batch_size`` at a time, so memory
    is bounded whatever the batch and the number of points."""
    probs, correct = [], []
    for start in range(0, batch * points, batch_size):
        flat = torch.arange(start, min(start + batch_size, batch * points), device=chosen.device)
        rows, cols = flat // points, flat % points
        scores = class_scores(model(make(rows, cols)), score_fn, flat.shape[0])  # (m, num_classes)
        probs.append(scores.softmax(1).gather(1, chosen[rows, None]).squeeze(1))
        correct.append(scores.argmax(1) == chosen[rows])
    probs_of = torch.cat(probs).view(batch, points)  # (B, points)
    check_finite(probs_of, "the model's scores on the perturbed inputs are NaN or +inf")
    return probs_of, torch.cat(correct).view(batch, points)


# ---------------------------------------------------------------- deletion / insertion


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over every dim after (B, C); kernel cut at 3 sigma.

    Replicate padding, so borders are not darkened towards zero."""
    if not sigma > 0:
        raise ConfigError(f"blur_sigma must be positive, got {sigma}")
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)  # (1, 1, 2r+1)
    out = images
    for dim in range(2, images.dim()):
        moved = out.movedim(dim, -1)
        lines = moved.reshape(-1, 1, moved.shape[-1])  # (rows, 1, L)
        blurred = F.conv1d(F.pad(lines, (radius, radius), mode="replicate"), kernel)
        out = blurred.reshape(moved.shape).movedim(-1, dim)
    return out


def make_baseline(inputs: torch.Tensor, baseline: Baseline, blur_sigma: float = 5.0) -> torch.Tensor:
    """The image pixels are replaced by: zeros, a Gaussian blur of the image, its per-channel mean."""
    if isinstance(baseline, torch.Tensor):
        if baseline.shape != inputs.shape:
            raise InputError(f"baseline {tuple(baseline.shape)} must match inputs {tuple(inputs.shape)}")
        return baseline.to(inputs)
    if baseline not in BASELINES:
        raise unknown("baseline", str(baseline), BASELINES)
    if baseline == "zeros":
        return torch.zeros_like(inputs)
    if baseline == "mean":
        return inputs.mean(tuple(range(2, inputs.dim())), keepdim=True).expand_as(inputs)
    return gaussian_blur(inputs, blur_sigma)


def _curve(
    model: nn.Module,
    inputs: torch.Tensor,
    saliency: torch.Tensor,
    *,
    insert: bool,
    steps: int,
    baseline: Baseline,
    targets: Targets,
    score_fn: ScoreFn | None,
    batch_size: int,
    blur_sigma: float,
) -> PerturbationCurve:
    _check_images(model, inputs, saliency, spatial=(1, 2, 3))
    _check_positive(steps, "steps")
    _check_positive(batch_size, "batch_size")
    batch, channels, pixels = inputs.shape[0], inputs.shape[1], saliency[0].numel()
    counts = torch.arange(steps + 1, device=inputs.device) * pixels // steps  # (T,) pixels changed
    ranks = _ranks(saliency.to(inputs.device), descending=True)
    with eval_mode(model), torch.no_grad():
        image = inputs.reshape(batch, channels, pixels)  # (B, C, n)
        base = make_baseline(inputs, baseline, blur_sigma).reshape(batch, channels, pixels)
        first, second = (base, image) if insert else (image, base)

        def make(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            changed = ranks[rows] < counts[cols, None]  # (m, n)
            mixed = torch.where(changed[:, None], second[rows], first[rows])  # (m, C, n)
            return mixed.view(-1, *inputs.shape[1:])

        chosen = _resolve(model, inputs, targets, score_fn, batch_size)
        probs, _ = _pair_scores(model, batch, steps + 1, make, chosen, score_fn, batch_size)
    fractions = counts.to(probs.dtype) / pixels
    return PerturbationCurve(fractions, probs, torch.trapezoid(probs, fractions, dim=1), chosen)


def deletion(
    model: nn.Module,
    inputs: torch.Tensor,
    saliency: torch.Tensor,
    *,
    steps: int = 100,
    baseline: Baseline = "zeros",
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    batch_size: int = 64,
    blur_sigma: float = 5.0,
) -> PerturbationCurve:
    """RISE deletion: remove pixels most salient first; lower AUC is better.

    ``inputs`` (B, C, *S) with S = (L,), (H, W) or (T, H, W); ``saliency`` (B, *S).
    ``baseline``: "zeros" (RISE), "blur", "mean" or a tensor like ``inputs``.
    ``batch_size`` images go through the model at once."""
    return _curve(
        model,
        inputs,
        saliency,
        insert=False,
        steps=steps,
        baseline=baseline,
        targets=targets,
        score_fn=score_fn,
        batch_size=batch_size,
        blur_sigma=blur_sigma,
    )


def insertion(
    model: nn.Module,
    inputs: torch.Tensor,
    saliency: torch.Tensor,
    *,
    steps: int = 100,
    baseline: Baseline = "blur",
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    batch_size: int = 64,
    blur_sigma: float = 5.0,
) -> PerturbationCurve:
    """RISE insertion: copy pixels most salient first into the baseline; higher AUC is better.

    Arguments as :func:`deletion`; the default baseline is RISE's blurred image."""
    return _curve(
        model,
        inputs,
        saliency,
        insert=True,
        steps=steps,
        baseline=baseline,
        targets=targets,
        score_fn=score_fn,
        batch_size=batch_size,
        blur_sigma=blur_sigma,
    )


# ---------------------------------------------------------------- ROAD


def _imputation_system(removed: np.ndarray, image: np.ndarray) -> tuple[object, np.ndarray]:
    """Sparse (m, m) system and (m, C) right-hand side for the m removed pixels."""
    from scipy import sparse

    height, width = removed.shape
    idx = np.flatnonzero(removed)
    unknown_row = np.full(height * width, -1)
    unknown_row[idx] = np.arange(idx.size)
    rows, cols = np.divmod(idx, width)
    diag = np.zeros(idx.size)
    rhs = np.zeros((idx.size, image.shape[0]))
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for dr, dc, weight in _NEIGHBOURS:
        nr, nc = rows + dr, cols + dc
        inside = np.flatnonzero((nr >= 0) & (nr < height) & (nc >= 0) & (nc < width))
        neighbour = nr[inside] * width + nc[inside]
        diag[inside] += weight  # renormalises the mean over the neighbours that exist
        missing = unknown_row[neighbour] >= 0
        entries.append((inside[missing], unknown_row[neighbour[missing]], np.full(missing.sum(), -weight)))
        rhs[inside[~missing]] += weight * image[:, neighbour[~missing]].T
    eq, var, val = (np.concatenate(parts) for parts in zip(*entries, strict=True))
    matrix = sparse.coo_matrix((val, (eq, var)), shape=(idx.size, idx.size)) + sparse.diags(diag)
    return matrix.tocsc(), rhs


def linear_imputation(
    image: torch.Tensor,
    removed: torch.Tensor,
    *,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ROAD's (noisy) linear imputation of the ``removed`` (H, W) pixels of a (C, H, W) image.

    Each removed pixel becomes the weighted mean of its neighbours (removed ones
    included, so the whole hole is solved jointly), plus N(0, noise^2). Kept
    pixels are unchanged. A linear image is reproduced exactly (noise 0) wherever
    the removed pixels keep all 8 neighbours inside the image."""
    try:
        from scipy.sparse.linalg import splu
    except ImportError as err:
        raise ConfigError("ROAD needs scipy: pip install 'attnlab[points]' (or scipy)") from err
    if image.dim() != 3 or removed.shape != image.shape[1:] or removed.dtype != torch.bool:
        raise InputError(
            f"need a (C, H, W) image and a bool (H, W) mask, got {tuple(image.shape)} and "
            f"{removed.dtype} {tuple(removed.shape)}"
        )
    mask = removed.cpu().numpy()
    if not mask.any():
        return image.clone()
    if mask.all():
        raise InputError("cannot impute an image with every pixel removed; use fractions below 1")
    values = image.detach().cpu().double().numpy().reshape(image.shape[0], -1)  # (C, n)
    matrix, rhs = _imputation_system(mask, values)
    solved = torch.from_numpy(splu(matrix).solve(rhs).T.copy())  # (C, m)
    if noise > 0:
        solved = solved + noise * torch.randn(solved.shape, generator=generator, dtype=solved.dtype)
    out = image.detach().clone().reshape(image.shape[0], -1)  # (C, n)
    out[:, torch.from_numpy(np.flatnonzero(mask)).to(out.device)] = solved.to(out)
    return out.view_as(image)


def road(
    model: nn.Module,
    inputs: torch.Tensor,
    saliency: torch.Tensor,
    *,
    order: str = "morf",
    fractions: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    targets: Targets = None,
    score_fn: ScoreFn | None = None,
    noise: float = 0.01,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
) -> RoadCurve:
    """ROAD: remove the most (``"morf"``) or least (``"lerf"``) relevant ``fractions`` of pixels.

    ``inputs`` (B, C, H, W), ``saliency`` (B, H, W); ``round(f * H * W)`` pixels
    are removed for each fraction ``f`` in [0, 1). ``noise`` is the imputation
    noise's standard deviation in the units of ``inputs``; ``generator`` makes it
    reproducible (pairs draw it image-major, so results do not depend on
    ``batch_size``). MoRF: a faster drop is better; LeRF: a slower one."""
    if order not in ORDERS:
        raise unknown("ROAD order", order, ORDERS)
    _check_images(model, inputs, saliency, spatial=(2,))
    _check_positive(batch_size, "batch_size")
    if not fractions or not all(0 <= f < 1 for f in fractions):
        raise ConfigError(f"fractions must be a non-empty list of values in [0, 1), got {list(fractions)}")
    if not noise >= 0:
        raise ConfigError(f"noise must be a non-negative standard deviation, got {noise}")
    pixels = saliency[0].numel()
    counts = torch.tensor([round(f * pixels) for f in fractions], device=inputs.device)  # (F,)
    ranks = _ranks(saliency.to(inputs.device), descending=order == "morf")

    def make(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        removed = (ranks[rows] < counts[cols, None]).view(-1, *saliency.shape[1:])  # (m, H, W)
        filled = [
            linear_imputation(inputs[b], gone, noise=noise, generator=generator)
            for b, gone in zip(rows.tolist(), removed, strict=True)
        ]
        return torch.stack(filled)  # (m, C, H, W)

    with eval_mode(model), torch.no_grad():
        chosen = _resolve(model, inputs, targets, score_fn, batch_size)
        probs, correct = _pair_scores(
            model, inputs.shape[0], len(fractions), make, chosen, score_fn, batch_size
        )
    return RoadCurve(torch.tensor(list(fractions), dtype=probs.dtype), probs, correct)


# ---------------------------------------------------------------- localisation


def box_masks(boxes: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, H, W) bool union of each image's boxes (B, 4) or (B, M, 4) ``(x1, y1, x2, y2)``."""
    if not isinstance(boxes, torch.Tensor) or boxes.dim() not in (2, 3) or boxes.shape[-1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
        raise InputError(f"boxes must be (B, 4) or (B, M, 4) as (x1, y1, x2, y2), got {shape}")
    if not torch.isfinite(boxes.float()).all():
        raise InputError("boxes contain NaN or inf")
    height, width = (int(s) for s in size)
    per_image = (boxes if boxes.dim() == 3 else boxes[:, None]).float()  # (B, M, 4)
    ys = torch.arange(height, device=boxes.device) + 0.5  # pixel centres
    xs = torch.arange(width, device=boxes.device) + 0.5
    x1, y1, x2, y2 = (per_image[..., k, None] for k in range(4))  # (B, M, 1)
    inside_y = (ys >= y1) & (ys < y2)  # (B, M, H)
    inside_x = (xs >= x1) & (xs < x2)  # (B, M, W)
    return (inside_y[..., :, None] & inside_x[..., None, :]).any(1)  # (B, H, W)


def _region(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """The region as a bool mask shaped like ``maps``; every image's must be non-empty."""
    if isinstance(region, torch.Tensor) and region.dtype == torch.bool:
        if region.shape != maps.shape:
            raise InputError(f"region mask {tuple(region.shape)} must match the maps {tuple(maps.shape)}")
        mask = region
    elif maps.dim() == 3:
        mask = box_masks(region, maps.shape[1:]).to(maps.device)
        if mask.shape[0] != maps.shape[0]:
            raise InputError(f"got boxes for {mask.shape[0]} images and {maps.shape[0]} maps")
    else:
        raise InputError(f"maps {tuple(maps.shape)} need a bool region mask of the same shape")
    empty = ~mask.flatten(1).any(1)
    if empty.any():
        raise InputError(f"empty region (no pixel centre inside) for images {empty.nonzero()[:, 0].tolist()}")
    return mask


def _disk(radius: float, device: torch.device) -> torch.Tensor:
    reach = math.floor(radius)
    offsets = torch.arange(-reach, reach + 1, device=device, dtype=torch.float32)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2).float()  # (2r+1, 2r+1)


def pointing_game(saliency: torch.Tensor, region: torch.Tensor, *, tolerance: float = 15.0) -> torch.Tensor:
    """(B,) float: 1 hit, 0 miss, NaN for a constant map (see the module docstring).

    ``saliency`` (B, H, W); ``region`` a bool (B, H, W) mask or boxes. A maximum
    within ``tolerance`` pixels (Euclidean) of the region is a hit."""
    _check_maps(saliency)
    if saliency.dim() != 3:
        raise InputError(f"the pointing game needs (B, H, W) maps, got {tuple(saliency.shape)}")
    if not tolerance >= 0:
        raise ConfigError(f"tolerance must be a non-negative number of pixels, got {tolerance}")
    mask = _region(saliency, region)
    disk = _disk(tolerance, saliency.device)
    reach = disk.shape[0] // 2
    near = F.conv2d(mask[:, None].float(), disk[None, None], padding=reach)[:, 0] > 0.5  # (B, H, W)
    flat = saliency.flatten(1)  # (B, n)
    peaks = flat == flat.max(1, keepdim=True).values  # (B, n)
    hits = (~peaks | near.flatten(1)).all(1).to(saliency.dtype)
    constant = flat.max(1).values == flat.min(1).values
    return torch.where(constant, torch.full_like(hits, math.nan), hits)


def energy_in_region(attributions: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,) share of each map's attribution mass inside the region (energy pointing game).

    ``attributions`` (B, ...) must be non-negative (take ``.clamp(min=0)`` or
    ``.abs()`` of signed ones first); ``region`` a bool mask of the same shape, or
    boxes for (B, H, W) maps. An all-zero map has no mass to share: NaN."""
    _check_maps(attributions, "attributions")
    if (attributions < 0).any():
        raise InputError("attributions must be non-negative; use .clamp(min=0) or .abs() first")
    mask = _region(attributions, region)
    total = attributions.flatten(1).sum(1)
    inside = (attributions * mask).flatten(1).sum(1)
    return torch.where(total > 0, inside / torch.where(total > 0, total, 1.0), math.nan)


# ---------------------------------------------------------------- attention inversion


def inversion_drop(plain: float, spatial: float, temporal: float, both: float) -> InversionDrop:
    """Drops ``plain - inverted`` of the accuracies (fractions in [0, 1]) with the
    spatial, the temporal and both attentions inverted (seed 001, table 2)."""
    given = {"plain": plain, "spatial": spatial, "temporal": temporal, "both": both}
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InputError(f"accuracy '{name}' must be a fraction in [0, 1] (% / 100), got {value!r}")
    return InversionDrop(spatial=plain - spatial, temporal=plain - temporal, both=plain - both)
