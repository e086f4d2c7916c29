"""Official checkpoints of the methods attnlab reproduces, loaded into attnlab models.

Each entry point pairs a model's key rules (``OFFICIAL_KEYS``, data beside the model)
with :func:`attnlab.runs.convert.load_foreign`: read with ``weights_only=True``,
rename, check every key and shape, load; user errors are one-line InputErrors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.residual import official_cifar_block
from attnlab.models.abn.branch_network import BranchNetwork
from attnlab.models.abn.resnet_abn import ABNConfig, AttentionBranchNetwork
from attnlab.models.object_centric import vimon
from attnlab.runs.convert import load_foreign

ABN = TypeVar("ABN", bound=BranchNetwork)


def load_official_abn(model: ABN, path: str | Path) -> ABN:
    """``model`` (any ABN backbone, built with the checkpoint's config) holding an official
    machine-perception-robotics-group/attention_branch_network state dict, in place.

    Accepts the bare state dict or the training script's checkpoint (``{"state_dict": ...}``
    with DataParallel's ``module.`` prefixes); the model's ``official_keys`` rename.
    """
    if not isinstance(model, BranchNetwork):
        raise InputError(
            f"load_official_abn takes an ABN (resnet/wrn/densenet/resnext), got {type(model).__name__}"
        )
    what = f"official {type(model).__name__} checkpoint"
    load_foreign(model, path, model.official_keys, what, unwrap=("state_dict",), strip=("module.",))
    return model


def load_official_abn_cifar(path: str | Path, depth: int, num_classes: int) -> AttentionBranchNetwork:
    """An official CIFAR ResNet-ABN checkpoint of that depth and number of classes (training mode,
    like a freshly built model)."""
    config = ABNConfig(depth=depth, block=official_cifar_block(depth), num_classes=num_classes)
    try:
        model = AttentionBranchNetwork(config)
    except ConfigError as err:
        raise InputError(f"cannot build the official CIFAR ResNet-ABN: {err}") from None
    return load_official_abn(model, path)


def load_official_vimon(path: str | Path, *, config: vimon.ViMONConfig | None = None) -> vimon.ViMON:
    """A :class:`~attnlab.models.object_centric.vimon.ViMON` with the weights of the reference's
    ``ckpt_vimon_vmds.pt`` (ecker-lab/object-centric-representation-benchmark).

    ``config`` defaults to the ``vimon-vmds-official`` preset (6 slots); the weights do
    not fix the number of slots. Missing, unexpected or mis-shaped keys raise InputError.
    """
    return load_official_vimon_into(vimon.ViMON(config or vimon.ViMONConfig(num_slots=6)), path)


def load_official_vimon_into(model: nn.Module, path: str | Path) -> vimon.ViMON:
    """``model`` (a ViMON built from any config the checkpoint fits, e.g. a run's) holding the
    weights of ``ckpt_vimon_vmds.pt``, in place."""
    if not isinstance(model, vimon.ViMON):
        raise InputError(f"the official ViMON checkpoint loads into a ViMON, not {type(model).__name__}")
    load_foreign(model, path, vimon.OFFICIAL_KEYS, "ViMON checkpoint")
    return model
