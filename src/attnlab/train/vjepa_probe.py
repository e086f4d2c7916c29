"""Frozen evaluation of a video encoder: probes fitted on its token features (V-JEPA, Bardes et
al. 2024, arXiv:2404.08471, Sec. 4 and Table 1's attentive vs average pooling).

The encoder stays frozen; its features of every probe-training clip are computed once and
kept, then each probe is fitted with AdamW on them:

* ``attentive``: :class:`attnlab.layers.pooling.AttentiveClassifier` (one learned query, one
  cross-attention block, linear head), as the official ``AttentiveClassifier`` (depth 1);
* ``average``: the mean over tokens, then a linear head (the paper's "average pooling").

``standardize`` puts a fixed per-channel standardisation in front of either probe: the mean and
standard deviation of each feature channel over every token of the probe-training clips (a
BatchNorm without affine parameters, frozen at those statistics, as MAE's linear probe). Why:
a pre-trained encoder's tokens can share a large per-channel offset and vary around it by a few
per cent (a V-JEPA run with the variance regulariser: channel std 0.044 around an offset of RMS
1.06, docs/vjepa.md), and a probe fitted with a fixed AdamW step size on such features barely
moves off chance although a ridge regression reads position and pixels from them with R^2 0.99.
Both encoders, trained and random, get the same probe.

At test time a probe may see several views of each sample (:mod:`attnlab.train.vjepa_views`:
the datamodule's temporal clips and spatial crops, ``num_views`` shifted crops made here); its
predictions are averaged over them, as softmax probabilities (the official
``video_classification_frozen``) or as logits (``average``). Probes are fitted on single clips,
as the official fits them on one view. ``attend_across_segments`` (the official option of that
name) instead gives a probe the tokens of every temporal clip (segment) of a video at once, one
spatial view at a time: fitted on the centre crops of all segments, tested on each spatial view's
segments, the predictions averaged over the spatial views. ``image_frame`` adds the paper's image
evaluation: probes fitted and tested on still clips that repeat one frame of each clip.

Deviations from the official evaluation (``evals/video_classification_frozen``): no data
augmentation (the clips here are small and generated); a fixed number of steps instead of
epochs (``schedule: cosine`` anneals the lr to 0 over them as the official does; ``constant``, the
default, keeps it); with ``attend_across_segments`` the probes are fitted on
the centre crops of the segments (the official draws a random crop per segment), and the
official's optional temporal positions of the segments (``ClipAggregation``'s ``use_pos_embed``,
off in its evaluation) are not added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError
from attnlab.layers.pooling import AttentiveClassifier
from attnlab.objectives.vjepa_schedules import half_cosine

ProbeKind = Literal["attentive", "average"]
KINDS: tuple[ProbeKind, ...] = ("attentive", "average")
ViewAverage = Literal["softmax", "logits"]
Schedule = Literal["constant", "cosine"]


@dataclass
class ProbeConfig:
    steps: int = 300
    lr: float = 1e-3
    # cosine: the official evaluation's lr, annealed from lr to 0 over the steps (no warm-up)
    schedule: Schedule = "constant"
    average_lr: float | None = None  # the average-pooling probe's lr (None: lr)
    weight_decay: float = 0.01
    batch_size: int = 64
    num_heads: int = 4
    num_views: int = 1  # shifted spatial crops of every test view (1: the view itself)
    view_shift: int = 4  # pixels the outermost crops are shifted by
    average: ViewAverage = "softmax"  # what is averaged over the views
    image_frame: int | None = None  # also probe still clips of this frame (the image evaluation)
    standardize: bool = False  # per-channel standardisation of the features by the training tokens' stats
    # one probe over the tokens of all of a video's temporal clips (the datamodule's ``segments``)
    attend_across_segments: bool = False

    def check(self) -> None:
        lrs_positive = self.lr > 0 and (self.average_lr is None or self.average_lr > 0)
        if self.steps < 1 or self.batch_size < 1 or not lrs_positive or self.weight_decay < 0:
            raise ConfigError(
                "task.probe needs steps, batch_size >= 1, lr (and average_lr) > 0 and weight_decay >= 0, "
                f"got {self}"
            )
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"task.probe.schedule is 'constant' or 'cosine', got {self.schedule!r}")
        if self.num_views < 1 or self.view_shift < 0 or self.average not in ("softmax", "logits"):
            raise ConfigError(
                "task.probe needs num_views >= 1, view_shift >= 0 and average 'softmax' or 'logits', "
                f"got {self.num_views}, {self.view_shift}, {self.average!r}"
            )


class AveragePoolProbe(nn.Module):
    """Tokens (B, N, D) -> mean over tokens -> linear -> logits (B, num_classes)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.mean(dim=1))


class Standardized(nn.Module):
    """``probe((x - mean) / std)`` with per-channel statistics (D,) fixed at construction."""

    def __init__(self, probe: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.probe = probe
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    @classmethod
    def fitted(cls, probe: nn.Module, features: torch.Tensor, eps: float = 1e-6) -> Standardized:
        """The statistics of every token of ``features`` (N, L, D), variance biased as BatchNorm's."""
        tokens = features.flatten(0, -2).double()  # (N * L, D)
        var, mean = torch.var_mean(tokens, dim=0, correction=0)
        return cls(probe, mean.float(), (var + eps).sqrt().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe((x - self.mean) / self.std)


def average_views(logits: torch.Tensor, how: ViewAverage) -> torch.Tensor:
    """Per-view logits (B, V, K) -> (B, K): the mean of the softmax probabilities or of the
    logits over the V views; one view is returned as it is."""
    if logits.shape[1] == 1:
        return logits[:, 0]
    if how == "softmax":
        return logits.softmax(dim=-1).mean(dim=1)
    return logits.mean(dim=1)


def across_segments(features: torch.Tensor, segments: int) -> torch.Tensor:
    """Token features (B, V, N, D) of V = segments x spatial views, segment-major (the order of
    :func:`attnlab.train.vjepa_views.evaluation_views`) -> (B, spatial, segments * N, D): for each
    spatial view, the tokens of its segments one after another (the official ``ClipAggregation``
    with ``attend_across_segments``). One segment returns the views as they are."""
    b, v, n, d = features.shape
    grouped = features.view(b, segments, v // segments, n, d)  # (B, segments, spatial, N, D)
    return grouped.transpose(1, 2).flatten(2, 3)  # (B, spatial, segments * N, D)


def build_probe(kind: ProbeKind, dim: int, num_classes: int, config: ProbeConfig) -> nn.Module:
    if kind == "attentive":
        return AttentiveClassifier(dim, num_classes=num_classes, num_heads=config.num_heads, depth=1)
    return AveragePoolProbe(dim, num_classes)


@torch.no_grad()
def extract(
    encoder: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    keys: Iterable[str],
    device: torch.device,
    *,
    segments: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Frozen token features (N, L, D) of every clip and the labels under ``keys`` (N,) each. With
    ``segments``, a sample's ``segments`` (S, C, T, H, W) where it has them: its features are the
    tokens of its S clips one after another (L = S x tokens per clip)."""
    keys = list(keys)
    feats: list[torch.Tensor] = []
    labels: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    for batch in batches:
        clips = batch["segments"] if segments and "segments" in batch else batch["input"][:, None]
        tokens = encoder(clips.flatten(0, 1).to(device))  # (B * S, N, D)
        feats.append(tokens.unflatten(0, clips.shape[:2]).flatten(1, 2).float().cpu())  # (B, S * N, D)
        for k in keys:
            labels[k].append(batch[k].cpu())
    return torch.cat(feats), {k: torch.cat(v) for k, v in labels.items()}


def fit_probe(
    kind: ProbeKind,
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    config: ProbeConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """A probe fitted on ``device`` on frozen ``features`` (N, L, D); its init and batches depend only on
    ``seed``. The features stay where they are (all of them need not fit on the device): each batch
    is moved."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = build_probe(kind, features.shape[-1], num_classes, config)
    if config.standardize:
        probe = Standardized.fitted(probe, features)
    probe = probe.to(device)
    lr = config.average_lr if kind == "average" and config.average_lr is not None else config.lr
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=config.weight_decay)
    probe.train()
    for step in range(config.steps):
        if config.schedule == "cosine":  # the official scheduler steps before each iteration: k = step + 1
            optimizer.param_groups[0]["lr"] = half_cosine(lr, 0.0, (step + 1) / config.steps)
        index = torch.randint(0, len(features), (min(config.batch_size, len(features)),), generator=generator)
        loss = F.cross_entropy(probe(features[index].to(device)), labels[index].to(device))
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return probe.eval()
