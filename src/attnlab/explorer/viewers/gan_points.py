"""Viewer of the GAN on 2-D points (``gan-points``): the generator's points over the real ones, on the
discriminator's P(real) over the plane."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
from matplotlib.figure import Figure

from attnlab.data.datamodule import DataModule
from attnlab.data.points import PointSets, RingPointsData
from attnlab.explorer.pictures import figure_url
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable
from attnlab.metrics.mixture import mixture_quality
from attnlab.train.gan import GANTask

POINT_CODES = 512  # latent codes per example: example i draws them with seed i
GRID = 160  # D's heat background: its P(real) at GRID x GRID points of the plane
MARGIN = 0.08  # of the points' span, left around them
GENERATOR_COLOURS = ["tab:orange", "lime", "magenta", "cyan", "gold", "tab:purple"]


class PointsGAN(Protocol):
    """What the points GAN task asks of its model (:class:`attnlab.train.gan.GANTask`)."""

    generator: Callable[[torch.Tensor], Any]  # (B, latent) -> .points (B, 2), or (B, k, 2) with k generators
    discriminator: Callable[[torch.Tensor], Any]  # (N, 2) -> .logits (N,), or (N, k + 1): last is real

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


def point_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """MAX_EXAMPLES examples: ``code`` i, the seed of its latent codes, and ``real``, every point of
    the test split (N, 2), the same tensor in each (the picture's background and D's real side)."""
    sets: list[torch.Tensor] = []
    for batch in data.test_dataloader():
        if not isinstance(batch, PointSets):
            raise NotViewable(f"the points GAN viewer reads point sets; {type(data).__name__} gives others")
        sets.append(batch.points())
    real = torch.cat(sets)  # (N, 2)
    return [{"code": torch.tensor(i), "real": real} for i in range(MAX_EXAMPLES)]


def view_gan_points(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    """The generator's points for example i's POINT_CODES codes (seed i), one colour per generator,
    over the test split's real points, on the discriminator's P(real) over the plane; D's mean
    P(real) on each generator's points and on the real ones; the report's mixture quality of both."""
    if method is not None:
        raise NotViewable(
            "CAM methods explain class scores; a points GAN is shown by its points and D's P(real)"
        )
    task = loaded.task
    assert isinstance(task, GANTask)
    model = cast(PointsGAN, task.model)  # the task checked its generator and discriminator
    seed, real = int(example["code"]), example["real"]
    z = model.sample_noise(POINT_CODES, torch.Generator().manual_seed(seed))  # (POINT_CODES, latent)
    with torch.no_grad():
        fake = _per_generator(model.generator(z).points)  # (k, POINT_CODES, 2)
        names = ["generated"] if len(fake) == 1 else [f"G{g}" for g in range(len(fake))]
        clouds = dict(zip(names, fake, strict=True))
        p_real = {name: _p_real(model.discriminator(points).logits) for name, points in clouds.items()}
        p_real["real"] = _p_real(model.discriminator(real).logits)  # (N,)
        x, y, heat = _d_on_plane(model, torch.cat([real, *fake]))
    caption = (
        f"{', '.join(names)}: {POINT_CODES} points from the codes of seed {seed} (coloured) over the "
        f"{len(real)} real test points (black), on D's P(real)"
    )
    span = [[round(float(axis[0]), 4), round(float(axis[-1]), 4)] for axis in (x, y)]
    notes = [
        f"z: {POINT_CODES} codes drawn by the model's sample_noise with seed {seed} (example i: seed i)",
        _picture_note(len(fake), len(real), span),
        *_quality_notes(loaded.data, task.coverage, clouds | {"real": real}),
    ]
    return {
        "input": {"kind": "points2d", "png": _scatter(real, clouds, heat, x, y), "caption": caption},
        "prediction": [
            {"label": f"D's mean P(real) on the {name} points", "p": round(float(p.mean()), 4)}
            for name, p in p_real.items()
        ],
        "target": None,
        "maps": [],
        "notes": notes,
        "methods": [],
        # for API readers: the heat background's extent and the points drawn, per generator
        "plane": {"x": span[0], "y": span[1], "grid": GRID},
        "generated": {
            name: [[round(a, 4), round(b, 4)] for a, b in p.tolist()] for name, p in clouds.items()
        },
    }


def _d_on_plane(model: PointsGAN, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The grid's x and y (GRID,) over the points (:func:`_plane`) and D's P(real) on it, (GRID, GRID)
    with rows along y (the picture's background)."""
    x, y = _plane(points)
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), -1)  # (GRID, GRID, 2): row = y, column = x
    return x, y, _p_real(model.discriminator(grid.flatten(0, 1)).logits).view(GRID, GRID)


def _picture_note(k: int, real: int, span: list[list[float]]) -> str:
    generated = (
        "the generated points (orange)" if k == 1 else f"each of the {k} generators' points in its colour"
    )
    (x0, x1), (y0, y1) = span
    return (
        f"picture: {generated} over the test split's {real} real points (black); background: D's P(real) "
        f"(blue: generated, red: real) on a {GRID} x {GRID} grid, x in [{x0:.2f}, {x1:.2f}], "
        f"y in [{y0:.2f}, {y1:.2f}]"
    )


def _per_generator(points: torch.Tensor) -> torch.Tensor:
    """Generated points (B, 2), or (B, k, 2) from k generators, as (k, B, 2)."""
    if points.dim() == 2:
        points = points[:, None]  # (B, 1, 2)
    if points.dim() != 3 or points.shape[-1] != 2:
        raise NotViewable(f"the points GAN viewer draws 2-D points; the generator made {tuple(points.shape)}")
    return points.transpose(0, 1)


def _p_real(logits: torch.Tensor) -> torch.Tensor:
    """D's P(real) per point: the sigmoid of its one logit (N,), or the last (real) column of its
    (k + 1)-way softmax (N, k + 1)."""
    return logits.sigmoid() if logits.dim() == 1 else logits.softmax(-1)[:, -1]


def _plane(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's x and y coordinates (GRID,) each: a square around every point (so the ring stays
    round), with a MARGIN of its side left on each side."""
    low, high = points.min(0).values, points.max(0).values  # (2,) each
    centre, half = (low + high) / 2, float((high - low).max().clamp_min(1e-3)) * (0.5 + MARGIN)
    return tuple(torch.linspace(float(c) - half, float(c) + half, GRID) for c in centre)  # type: ignore[return-value]


def _scatter(
    real: torch.Tensor, clouds: dict[str, torch.Tensor], heat: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> str:
    """The picture: D's P(real) as the background, real points black, each generator's in its colour."""
    figure = Figure(figsize=(5.4, 4.6), dpi=100, layout="constrained")
    ax = figure.subplots()
    extent = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
    image = ax.imshow(heat.numpy(), origin="lower", extent=extent, cmap="coolwarm", vmin=0, vmax=1)
    for g, (name, points) in enumerate(clouds.items()):
        colour = GENERATOR_COLOURS[g % len(GENERATOR_COLOURS)]
        ax.scatter(points[:, 0], points[:, 1], s=4, c=colour, alpha=0.8, label=name)
    # the real points last, on top: a collapsed generator's cloud must not hide the modes it misses
    ax.scatter(real[:, 0], real[:, 1], s=3, c="black", label="real (test split)")
    ax.set(xlim=extent[:2], ylim=extent[2:], aspect="equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=2, framealpha=0.8)
    figure.colorbar(image, ax=ax, shrink=0.8).set_label("D's P(real)")
    return figure_url(figure)


def _quality_notes(data: DataModule, coverage: float, clouds: dict[str, torch.Tensor]) -> list[str]:
    """The report's measures of each cloud: the share within 3 std of a mode, the modes covered."""
    if not isinstance(data, RingPointsData):
        return []
    lines = []
    for name, points in clouds.items():
        quality = mixture_quality(points, data.centers, data.std, coverage)
        lines.append(
            f"{name}: {100 * float(quality['high_quality']):.1f}% of points within 3 std of a mode, "
            f"{int(quality['modes'])} of {data.num_modes} modes covered"
        )
    return lines
