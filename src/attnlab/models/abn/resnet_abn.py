"""Attention Branch Network on ResNets (Fukui et al., CVPR 2019, arXiv:1812.10025).

A ResNet's stages up to the second-to-last give features f. The attention branch
is a copy of the last stage run at stride 1 on f, followed by the ABN head
(:class:`attnlab.layers.branch.AttentionBranchHead`): class logits from a
response map and a one-channel map M in (0, 1) at f's resolution. The perception
branch runs the real last stage (stride 2) on ``(1 + M) * f`` and classifies with
global average pooling and a linear layer. Both branches are trained with
cross-entropy (:func:`attnlab.objectives.abn.abn_loss`).

Reference implementation: machine-perception-robotics-group/attention_branch_network
(``models/cifar/resnet.py``, ``models/imagenet/resnet.py``); this follows its layout,
which differs from the paper's figure in places (3x3 map conv, BN after the last
stage of the branch, projection shortcuts, bottlenecks with (depth - 2) / 6 blocks
per stage for CIFAR depth >= 44). :func:`load_official_abn_cifar` loads its CIFAR
state dicts. Deviations: the fixed ``AvgPool2d(16 | 14 | 8 | 7)`` are global means
(the same on the sizes they were written for); ``in_chans`` widens the stem;
``attention_override`` lets an edited map M' replace M in the perception branch
(Mitsuhara et al., arXiv:1905.04929, "Embedding human knowledge into deep neural
network via attention map"), while ``attention`` stays the branch's own M so the
map loss ``||M - M'||`` can be formed.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.branch import AttentionBranchHead, apply_attention, check_attention_override
from attnlab.layers.residual import (
    ResNetConfig,
    ResNetStem,
    StageSpec,
    check_images,
    example_images,
    init_resnet_,
    make_stage,
    make_stages,
    official_cifar_block,
    stage_out_channels,
    stage_specs,
)
from attnlab.models._registry import register_model
from attnlab.models.outputs import ABNOutput


@dataclass
class ABNConfig(ResNetConfig):
    """A ResNet-ABN; the ResNet fields as :class:`ResNetConfig`, plus the head's map conv."""

    map_kernel_size: int = 3  # the reference's 3x3; the paper's figure shows 1x1


def _cifar(depth: int) -> ABNConfig:
    return ABNConfig(depth=depth, block=official_cifar_block(depth))


@register_model("abn-resnet20-cifar", config=_cifar(20))
@register_model(
    "abn-resnet56-cifar",
    config=_cifar(56),
)
@register_model(
    "abn-resnet110-cifar",
    config=_cifar(110),
)
@register_model(
    "abn-resnet18",
    config=ABNConfig(style="imagenet", depth=18, num_classes=1000),
)
@register_model(
    "abn-resnet50",
    config=ABNConfig(style="imagenet", depth=50, block="bottleneck", num_classes=1000),
)
@register_model(
    "abn-resnet101",
    config=ABNConfig(style="imagenet", depth=101, block="bottleneck", num_classes=1000),
)
class AttentionBranchNetwork(nn.Module):
    """ResNet-ABN: images (B, in_chans, H, W) -> :class:`ABNOutput`."""

    def __init__(self, config: ABNConfig) -> None:
        super().__init__()
        self.config = config
        *shared, last = stage_specs(config)
        self.stem = ResNetStem(config.style, config.in_chans)
        self.stages, channels = make_stages(config, shared, self.stem.out_chs)
        branch_spec = StageSpec(last.width, last.num_blocks, stride=1)  # keeps f's resolution for M
        self.attention_stage = make_stage(config.block, channels, branch_spec, shortcut=config.shortcut)
        out_chs = stage_out_channels(config.block, last)
        try:
            self.head = AttentionBranchHead(
                out_chs, config.num_classes, map_kernel_size=config.map_kernel_size
            )
        except InputError as err:
            raise ConfigError(str(err)) from None
        self.perception_stage = make_stage(config.block, channels, last, shortcut=config.shortcut)
        self.fc = nn.Linear(out_chs, config.num_classes)
        init_resnet_(self)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Valid inputs for ``forward`` (used by the registry-wide tests)."""
        return {"images": example_images(self.config, batch_size)}

    def forward(self, images: torch.Tensor, *, attention_override: torch.Tensor | None = None) -> ABNOutput:
        """``attention_override`` (B, 1, h, w) in [0, 1], h, w as ``attention``: replaces M for the
        perception branch (a human-edited map); the attention branch still runs for att_logits."""
        check_images(images, self.config.in_chans)
        f = self.stem(images)
        for stage in self.stages:
            f = stage(f)  # (B, C, h, w)
        branch = self.head(self.attention_stage(f))  # logits (B, K), attention (B, 1, h, w)
        m = branch.attention
        if attention_override is not None:
            m = check_attention_override(attention_override, f)
        x = self.perception_stage(apply_attention(f, m))  # (B, C', h / 2, w / 2)
        logits = self.fc(x.mean(dim=(2, 3)))  # (B, K)
        return ABNOutput(att_logits=branch.logits, logits=logits, attention=branch.attention)


# official top-level module name -> ours; block internals (conv1, bn1, ..., downsample.*) are shared
_OFFICIAL_CIFAR_PREFIXES = {
    "conv1.": "stem.conv.",
    "bn1.": "stem.norm.",
    "layer1.": "stages.0.",
    "layer2.": "stages.1.",
    "att_layer3.": "attention_stage.",
    "bn_att.": "head.norm.",
    "att_conv.": "head.to_classes.",
    "bn_att2.": "head.norm_classes.",
    "att_conv2.": "head.class_conv.",
    "att_conv3.": "head.map_conv.",
    "bn_att3.": "head.map_norm.",
    "layer3.": "perception_stage.",
    "fc.": "fc.",
}


def official_cifar_key(name: str) -> str:
    """Our parameter name for an official CIFAR ResNet-ABN one (unknown names pass through)."""
    for prefix, ours in _OFFICIAL_CIFAR_PREFIXES.items():
        if name.startswith(prefix):
            return ours + name[len(prefix) :]
    return name


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"ABN checkpoint not found: {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read ABN checkpoint {path}: {reason}") from None
    # the reference's training script saves {"state_dict": DataParallel(model).state_dict(), ...}
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise InputError(f"ABN checkpoint {path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def _check_layout(
    state: dict[str, torch.Tensor], origin: dict[str, str], model: nn.Module, what: str
) -> None:
    """Names the checkpoint's own keys (``origin``: ours -> the file's) in every message."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(origin[k] for k in set(state) - set(expected))
    if missing or unexpected:
        raise InputError(
            f"checkpoint does not match {what}: {len(missing)} missing keys (attnlab names) {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]} (wrong depth?)"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise InputError(
                f"checkpoint does not match {what}: {origin[key]} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)} (wrong num_classes or depth?)"
            )


def load_official_abn_cifar(
    state_dict_path: str | Path, depth: int, num_classes: int
) -> AttentionBranchNetwork:
    """An :class:`AttentionBranchNetwork` holding an official CIFAR ResNet-ABN state dict.

    Reads with ``weights_only=True``; accepts the bare state dict or the training
    script's checkpoint (``{"state_dict": ...}`` with ``module.`` prefixes). The model
    is returned in training mode, like a freshly built one.
    """
    config = ABNConfig(depth=depth, block=official_cifar_block(depth), num_classes=num_classes)
    try:
        model = AttentionBranchNetwork(config)
    except ConfigError as err:
        raise InputError(f"cannot build the official CIFAR ResNet-ABN: {err}") from None
    official = _read_state_dict(Path(state_dict_path))
    origin = {official_cifar_key(k): k for k in official}
    state = {ours: official[k] for ours, k in origin.items()}
    _check_layout(state, origin, model, f"official CIFAR ResNet-ABN-{depth} with {num_classes} classes")
    model.load_state_dict(state)
    return model
