"""Image GANs with k generators and a (k + 1)-way discriminator: DCGAN, MAD-GAN, the KTG method.

Each batch the discriminator steps on MAD-GAN's loss (:mod:`attnlab.objectives.gan_madgan`)
with the generators' images detached, then the generators (one optimiser for all k) step on
``method``'s loss: ``madgan``, every generator's CE towards "real" (DCGAN when k = 1), or
``ktg``, the knowledge transfer graph's gated edges (:mod:`attnlab.objectives.gan_ktg`) at
``progress = global_step / max_steps``. With ``model.ema: true`` the generators' moving average
(``task.ema_beta``) moves after every step and draws every evaluation sample. The model is a
:class:`~attnlab.models.gan.madgan.MultiGAN`; the data Fashion-MNIST or CIFAR-10, converted by
:mod:`attnlab.train.gan_data`.

Evaluation (validation and test): every real image of the split and, for each, one image of
every generator from noise seeded by the batch's position (the same codes in every run) go
through the cached domain classifier (:mod:`attnlab.train.gan_classifier`); at the end of the
split the task logs ``is_like`` (mean over 10 splits) and ``is_like_std``, ``fid_like``
(against the training images' feature statistics) of the k generators' images pooled, the same
per generator (``g<i>/...``), of the untrained generators (``floor/...``) and of the real
held-out images (``data/...``). :data:`SCORE_LISTENERS` hear every validation's scores (the
gate search's pruner).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.metrics.gan_scores import FIDLike, inception_like_score
from attnlab.objectives import gan_ktg, gan_madgan
from attnlab.objectives.terms import weighted_sum
from attnlab.runs.config import Optim
from attnlab.train.gan_classifier import DomainScorer, domain_scorer
from attnlab.train.gan_data import to_gan_images
from attnlab.train.gan_figures import sample_grid
from attnlab.train.registry import register_task
from attnlab.train.task import Task

# Called with (global_step, {"is_like": ..., "fid_like": ...}) after every validation.
SCORE_LISTENERS: list[Callable[[int, dict[str, float]], None]] = []


@register_task("gan-images")
class GANImagesTask(Task):
    """k generators and one (k + 1)-way discriminator taking turns on every batch."""

    monitor = "val/is_like"
    monitor_mode = "max"
    optimizer_names = ("discriminator", "generator")

    def __init__(
        self,
        *,
        model: nn.Module,
        optim: Optim,
        method: Literal["madgan", "ktg"] = "madgan",
        graph: dict[str, str] | None = None,
        alpha: float = gan_ktg.ALPHA,
        classifier_steps: int = 1500,
        classifier_cache: str = "runs/_cache",
        reference_size: int = 10000,
        grid_codes: int = 12,
        ema_beta: float = 0.999,
    ) -> None:
        config = getattr(model, "config", None)
        if not hasattr(config, "num_generators") or not hasattr(config, "image_size"):
            raise ConfigError("task 'gan-images' needs a MultiGAN model (e.g. model.name: dcgan-32)")
        super().__init__(model=model, optim=optim)
        self.k, self.size = int(config.num_generators), int(config.image_size)  # type: ignore[union-attr]
        self.method, self.alpha = method, alpha
        self.graph = self._graph(method, graph)
        if classifier_steps < 1 or reference_size < 2 or grid_codes < 1:
            raise ConfigError("task.classifier_steps, reference_size and grid_codes must be positive")
        self.classifier_steps, self.cache, self.reference_size = (
            classifier_steps,
            Path(classifier_cache),
            reference_size,
        )
        self.grid_codes = grid_codes
        if not 0 <= ema_beta < 1:
            raise ConfigError(f"task.ema_beta must be in [0, 1), got {ema_beta}")
        self.ema_beta = ema_beta
        # The untrained generators (floor row); in a list so they are neither trained nor saved.
        self._untrained = [copy.deepcopy(model.generator).requires_grad_(False).eval()]
        self._scorer: list[DomainScorer] = []
        self._fid: list[FIDLike] = []  # torchmetrics' FID holding the reference features
        self._seen: dict[str, list[torch.Tensor]] = {}

    def _graph(self, method: str, graph: dict[str, str] | None) -> gan_ktg.KTGraph | None:
        if method == "madgan":
            if graph is not None:
                raise ConfigError("task.graph is for task.method: ktg")
            return None
        if method != "ktg":
            raise ConfigError(f"task.method must be madgan or ktg, got '{method}'")
        if graph is None:
            raise ConfigError("task.method: ktg needs task.graph (a gate per edge: {'D->0': through, ...})")
        ktg = gan_ktg.KTGraph(self.k, dict(graph))
        if not self.model.config.taps and any(
            not e.startswith("D") and g != "cutoff" for e, g in graph.items()
        ):
            raise ConfigError("generator-to-generator edges need feature taps: model.taps: [block1, ...]")
        return ktg

    # -- training ------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._scorer:
            return
        data = self.trainer.datamodule
        train = data.dataset("train")
        channels = int(train[0]["input"].shape[0])
        if channels != self.model.config.channels:
            raise ConfigError(f"model.channels is {self.model.config.channels} but the data's images have "
                              f"{channels}: --model.channels {channels}")  # fmt: skip
        scorer = domain_scorer(
            train,
            data.dataset("val"),
            cache=self.cache,
            size=self.size,
            steps=self.classifier_steps,
            seed=0,
            reference_size=self.reference_size,
        )
        scorer.classifier.requires_grad_(False)
        self._scorer.append(scorer)
        self._fid.append(scorer.fid_like())

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        out = super().training_step(batch, batch_idx)
        if self.model.generator_ema is not None:  # within the step: the checkpoint saves before hooks
            self.model.update_ema(self.ema_beta)
        return out

    def _progress(self) -> float:
        return min(1.0, self.global_step / max(1, self.trainer.max_steps))

    def loss_terms_for(self, name: str, batch: Any) -> dict[str, torch.Tensor]:
        real = to_gan_images(batch["input"], self.size)
        z = self.model.sample_noise(len(real))
        if name == "discriminator":
            with torch.no_grad():
                fake, _ = self.model.generator(z)  # (B, k, C, H, W)
            d = self.model.discriminator
            fake_logits = d(fake.flatten(0, 1)).unflatten(0, fake.shape[:2])  # (B, k, k+1)
            return gan_madgan.discriminator_terms(d(real), fake_logits)
        out = self.model(z)
        if self.graph is None:
            return gan_madgan.generator_terms(out.logits)
        return gan_ktg.generator_terms(self.graph, out.logits, out.features, self._progress(), self.alpha)

    # -- evaluation ----------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._seen, self._batches = {}, 0
        if self.model.generator_ema is not None:  # before the averaged generators sample
            self.model.standing_statistics()

    on_test_epoch_start = on_validation_epoch_start

    def _keep(self, key: str, images: torch.Tensor) -> None:
        out = self._scorer[0].classifier.to(self.device)(images)
        for part, value in (("logits", out.logits), ("features", out.features)):
            self._seen.setdefault(f"{key}|{part}", []).append(value.detach().cpu())

    def metrics(self, batch: Any) -> dict[str, torch.Tensor]:
        real = to_gan_images(batch["input"], self.size)
        noise = torch.Generator().manual_seed(10_000 + self._batches)
        self._batches += 1
        z = self.model.sample_noise(len(real), noise)
        out = self.model(z, averaged=True)
        floor, _ = self._untrained[0].to(self.device)(z)  # (B, k, C, H, W)
        self._keep("data", real)
        for i in range(self.k):
            self._keep(f"g{i}", out.images[:, i])
            self._keep(f"floor_g{i}", floor[:, i])
        d_terms = gan_madgan.discriminator_terms(self.model.discriminator(real), out.logits)
        g_terms = gan_madgan.generator_terms(out.logits)
        losses = {"discriminator/loss": weighted_sum(d_terms), "generator/loss": weighted_sum(g_terms)}
        return losses | {"loss": weighted_sum(losses)}

    def _scores(self) -> dict[str, float]:
        seen = {key: torch.cat(values) for key, values in self._seen.items()}
        groups = {"": [f"g{i}" for i in range(self.k)], "floor/": [f"floor_g{i}" for i in range(self.k)]}
        groups |= {"data/": ["data"]} | {f"g{i}/": [f"g{i}"] for i in range(self.k) if self.k > 1}
        scores = {"classifier/accuracy": self._scorer[0].accuracy}
        for prefix, keys in groups.items():
            logits = _interleave([seen[f"{k}|logits"] for k in keys])
            features = _interleave([seen[f"{k}|features"] for k in keys])
            splits = min(10, len(logits))  # 10 as the reference code; fewer for tiny smoke runs
            scores[f"{prefix}is_like"], scores[f"{prefix}is_like_std"] = inception_like_score(logits, splits)
            scores[f"{prefix}fid_like"] = self._fid[0](features)
        return scores

    def _log_scores(self, split: str) -> dict[str, float]:
        if not self._seen:
            return {}
        scores = self._scores()
        for name, value in scores.items():
            self.log(f"{split}/{name}", value)
        return scores

    def on_validation_epoch_end(self) -> None:
        scores = self._log_scores("val")
        if scores and not self.trainer.sanity_checking:
            for listen in SCORE_LISTENERS:
                listen(self.global_step, scores)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        z = self.model.sample_noise(self.grid_codes, torch.Generator().manual_seed(0))
        real = torch.stack([datamodule.build("test")[i]["input"] for i in range(self.grid_codes)])
        with torch.no_grad():
            self.model.eval()
            images, _ = self.model.sampler()(z)
            floor, _ = self._untrained[0].to(self.device)(z)
        rows = {"real (test)": to_gan_images(real.to(self.device), self.size), "untrained G0": floor[:, 0]}
        rows |= {f"G{i}": images[:, i] for i in range(self.k)}
        path = sample_grid(rows, out_dir / "samples.png")
        return {
            f"Samples for the same {self.grid_codes} latent codes (seed 0): real images, "
            "untrained and trained generators": path
        }


def _interleave(parts: list[torch.Tensor]) -> torch.Tensor:
    """Pool equal-sized sets so each of the 10 IS splits holds every generator equally: (N*n, D)."""
    return torch.stack(parts, dim=1).flatten(0, 1)  # (N, n, D) -> (N * n, D)
