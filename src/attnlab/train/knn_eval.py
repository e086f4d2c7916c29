"""The k-NN evaluation of a self-supervised backbone and its random-initialisation floor.

DINO's ``eval_knn.py``: the frozen backbone's normed [CLS] feature of every bank (training) image
and of every test image; each test image is classified by the weighted vote of its 20 nearest bank
images (:func:`attnlab.metrics.knn.knn_predict`). The floor is the same evaluation of a backbone of
the same architecture, freshly initialised as the model would be (``type(model)(model.config)``,
seeded), so a run that does not beat it has learnt nothing the architecture did not already give.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attnlab.errors import ConfigError
from attnlab.metrics.knn import knn_predict
from attnlab.models.vit.classifier import HasBackbone
from attnlab.models.vit.image_vit import ImageViT


@dataclass
class KNNConfig:
    """``eval_knn.py``'s defaults: k = 20, T = 0.07."""

    k: int = 20
    temperature: float = 0.07
    seed: int = 0  # the random-init floor's seed

    def check(self) -> None:
        if self.k < 1 or self.temperature <= 0:
            raise ConfigError(f"task.knn needs k >= 1 and temperature > 0, got {self.k}, {self.temperature}")


def random_init_backbone(model: nn.Module, seed: int) -> ImageViT:
    """The backbone of a fresh model of ``model``'s class and config, initialised under ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh: HasBackbone = type(model)(model.config)  # type: ignore[call-arg]
    return fresh.backbone()


@torch.no_grad()
def cls_features(backbone: ImageViT, images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, D): the normed [CLS] token, in evaluation mode (no stochastic depth)."""
    was_training = backbone.training
    backbone.eval()
    features = backbone(images)[:, 0]
    backbone.train(was_training)
    return features


class KNNEvaluator:
    """Banks of [CLS] features per named backbone; accuracies of test batches against them."""

    def __init__(self, config: KNNConfig, num_classes: int) -> None:
        config.check()
        self.config, self.num_classes = config, num_classes
        self.backbones: dict[str, ImageViT] = {}
        self.banks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def fit(self, backbones: dict[str, ImageViT], batches: Iterable[Any], device: torch.device) -> None:
        """Extract every backbone's features of the bank images (batches with ``images``, ``label``)."""
        self.backbones = backbones
        feats: dict[str, list[torch.Tensor]] = {name: [] for name in backbones}
        labels: list[torch.Tensor] = []
        for batch in batches:
            images = batch.images.to(device)
            for name, backbone in backbones.items():
                feats[name].append(cls_features(backbone, images))
            labels.append(batch.label.to(device))
        bank_labels = torch.cat(labels)
        self.banks = {name: (torch.cat(f), bank_labels) for name, f in feats.items()}

    @torch.no_grad()
    def accuracies(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch accuracy per backbone name (empty before :meth:`fit`)."""
        c, values = self.config, {}
        for name, (bank, bank_labels) in self.banks.items():
            queries = cls_features(self.backbones[name], images)
            pred = knn_predict(bank, bank_labels, queries, self.num_classes, k=c.k, temperature=c.temperature)
            values[name] = (pred == labels).float().mean()
        return values


def start_knn(
    model: nn.Module, config: KNNConfig, datamodule: Any, device: torch.device
) -> KNNEvaluator | None:
    """The banks of ``model.backbone()`` and of its random-init floor over the datamodule's
    ``knn_dataloader``; None for a dataset without labels (the test then reports losses only)."""
    if not hasattr(datamodule, "knn_dataloader"):
        return None
    pretrained: HasBackbone = model  # type: ignore[assignment]
    floor = random_init_backbone(model, config.seed).to(device)
    knn = KNNEvaluator(config, datamodule.num_classes)
    knn.fit({"trained": pretrained.backbone(), "random_init": floor}, datamodule.knn_dataloader(), device)
    return knn


def knn_metrics(knn: KNNEvaluator | None, batch: Any) -> dict[str, torch.Tensor]:
    """``knn_acc`` and its floor ``knn_acc_random_init`` of a test batch (nothing without banks)."""
    if knn is None:
        return {}
    accuracies = knn.accuracies(batch.images, batch.label)
    return {"knn_acc": accuracies["trained"], "knn_acc_random_init": accuracies["random_init"]}
