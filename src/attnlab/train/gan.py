"""GAN training on points: two optimisers taking turns (Lightning manual optimisation).

Each batch, the discriminator steps on ``real`` + ``fake`` (generated points detached)
and, with ``r1_weight > 0``, the R1 penalty ``r1`` on real points,
then the generator on the non-saturating ``adv`` term (:mod:`attnlab.objectives.gan`);
the recipe's ``optim`` names both (``optim: {discriminator: {...}, generator: {...}}``),
and the base :class:`~attnlab.train.task.Task` runs the protocol. The model needs
``generator``, ``discriminator`` and ``sample_noise`` (:class:`attnlab.models.gan.toy.ToyGAN`);
the datamodule needs ``centers`` and ``std`` of its mixture and batches with ``points()``
(:class:`attnlab.data.points.RingPointsData`).

Metrics (:func:`attnlab.metrics.mixture.mixture_quality`, on as many generated points as
the batch has real ones, from noise seeded by the batch's first index, so evaluation is
deterministic): ``high_quality`` and ``modes`` of the trained generator, ``floor/*`` of
the untrained one (the same seed's initial weights, kept aside), ``data/*`` of the real
points (the ceiling), and each optimiser's loss.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.metrics.mixture import mixture_quality
from attnlab.objectives.gan import discriminator_terms, generator_terms, r1_penalty
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import Optim
from attnlab.train.registry import register_task
from attnlab.train.task import Task


@register_task("gan")
class GANTask(Task):
    """Non-saturating GAN on points; discriminator then generator on every batch."""

    monitor = "val/high_quality"
    monitor_mode = "max"
    optimizer_names = ("discriminator", "generator")

    def __init__(
        self, *, model: nn.Module, optim: Optim, r1_weight: float = 0.0, coverage: float = 0.2
    ) -> None:
        for part in ("generator", "discriminator"):
            if not isinstance(getattr(model, part, None), nn.Module):
                raise ConfigError(
                    f"task 'gan' needs a model with a '{part}' submodule (e.g. model.name: toy-gan)"
                )
        super().__init__(model=model, optim=optim)
        if not 0 < coverage <= 1 or r1_weight < 0:
            raise ConfigError(
                f"task.coverage must be in (0, 1] and task.r1_weight >= 0, got {coverage}, {r1_weight}"
            )
        self.coverage, self.r1_weight = coverage, r1_weight
        # The untrained generator, for the floor row; in a list so it is neither trained nor saved.
        self._untrained = [copy.deepcopy(model.generator).requires_grad_(False).eval()]

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule
        if not hasattr(data, "centers") or not hasattr(data, "std"):
            raise ConfigError(
                "task 'gan' needs a dataset of known mixture modes (e.g. data.name: ring-points)"
            )
        self.centers, self.std = data.centers, float(data.std)
        dim = getattr(getattr(self.model, "config", None), "data_dim", self.centers.shape[1])
        if dim != self.centers.shape[1]:
            raise ConfigError(
                f"the dataset's points are {self.centers.shape[1]}D but model.data_dim is {dim}"
            )

    def _generate(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.generator(self.model.sample_noise(n, generator)).points

    def loss_terms_for(self, name: str, batch: Any) -> dict[str, torch.Tensor]:
        real = batch.points()  # (N, 2)
        if name == "discriminator":
            with torch.no_grad():
                fake = self._generate(len(real))
            d = self.model.discriminator
            real.requires_grad_(self.r1_weight > 0)
            real_logits = d(real).logits
            terms = discriminator_terms(real_logits, d(fake).logits)
            if self.r1_weight > 0:
                terms["r1"] = self.r1_weight * r1_penalty(real_logits, real)
            return terms
        return generator_terms(self.model.discriminator(self._generate(len(real))).logits)

    def metrics(self, batch: Any) -> dict[str, torch.Tensor]:
        real = batch.points()
        noise = torch.Generator().manual_seed(int(batch.index[0]))
        z = self.model.sample_noise(len(real), noise)
        fake = self.model.generator(z).points
        floor = self._untrained[0].to(self.device)(z).points
        real_logits, fake_logits = (
            self.model.discriminator(real).logits,
            self.model.discriminator(fake).logits,
        )
        losses = {
            "discriminator/loss": weighted_sum(discriminator_terms(real_logits, fake_logits)),
            "generator/loss": weighted_sum(generator_terms(fake_logits)),
        }
        values = {"loss": weighted_sum(losses)} | losses
        for prefix, points in (("", fake), ("floor/", floor), ("data/", real)):
            quality = mixture_quality(points, self.centers, self.std, self.coverage)
            values |= {f"{prefix}{k}": v for k, v in quality.items()}
        self._remember(real, fake, floor)
        return values

    def on_test_epoch_start(self) -> None:
        self._test_points: list[tuple[torch.Tensor, ...]] = []

    def _remember(self, *points: torch.Tensor) -> None:
        if self.trainer.testing and not self._test_points:  # the first test batch is enough to draw
            self._test_points.append(tuple(p.detach().cpu() for p in points))

    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        if not getattr(self, "_test_points", None):
            return {}
        real, fake, floor = self._test_points[0]
        clouds = {"data": real, "untrained generator (floor)": floor, "trained generator": fake}
        path = plot_point_clouds(clouds, self.centers, 3 * self.std, out_dir / "samples.png")
        return {"Test points: data, untrained and trained generator (circles: 3 std around each mode)": path}


def plot_point_clouds(
    clouds: dict[str, torch.Tensor], centers: torch.Tensor, radius: float, path: Path
) -> Path:
    """One panel per (N, 2) point cloud, with a circle of ``radius`` around each mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(1, len(clouds), figsize=(3.6 * len(clouds), 3.6), squeeze=False)
    extent = float(centers.abs().max()) * 1.5
    for ax, (title, points) in zip(axes.flat, clouds.items(), strict=True):
        for cx, cy in centers.tolist():
            ax.add_patch(Circle((cx, cy), radius, fill=False, color="tab:red", lw=0.8))
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
        ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
