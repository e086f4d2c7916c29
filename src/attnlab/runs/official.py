"""Official checkpoints of the methods attnlab reproduces, loaded into attnlab models.

Each entry point pairs a model's key rules (``OFFICIAL_KEYS``, data beside the model)
with :func:`attnlab.runs.convert.load_foreign`: read with ``weights_only=True``,
rename, check every key and shape, load; user errors are one-line InputErrors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.pooling import AttentiveClassifier
from attnlab.layers.residual import official_cifar_block
from attnlab.models.abn.branch_network import BranchNetwork
from attnlab.models.abn.resnet_abn import ABNConfig, AttentionBranchNetwork
from attnlab.models.object_centric import vimon
from attnlab.models.rl import aqt
from attnlab.models.sam import sam
from attnlab.models.vit import image_vit, mae
from attnlab.models.vjepa import vjepa
from attnlab.runs.convert import load_foreign, read_state_dict, rename_keys
from attnlab.state_dicts import check_state_dict, load_state

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


def split_fused_qkv(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every ``*.qkv.weight|bias`` (3D rows: q, k, v) as ``*.q_proj.*`` (rows [:D]) and
    ``*.kv_proj.*`` (rows [D:]), the layout of :class:`attnlab.layers.attention.MultiHeadAttention`."""
    return _split_packed(state, r"(.*\.)?qkv\.(weight|bias)")


def _split_packed(state: dict[str, torch.Tensor], pattern: str) -> dict[str, torch.Tensor]:
    """Keys matching ``pattern`` (groups: prefix, weight|bias) with rows q, k, v split into
    ``q_proj`` (rows [:D]) and ``kv_proj`` (rows [D:]); other keys unchanged."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(pattern, key)
        if match is None:
            out[key] = value
            continue
        if value.shape[0] % 3:
            raise InputError(f"checkpoint key {key} has {value.shape[0]} rows, not a packed q, k, v (3 x D)")
        dim = value.shape[0] // 3
        prefix, kind = match[1] or "", match[2]
        out[f"{prefix}q_proj.{kind}"] = value[:dim]
        out[f"{prefix}kv_proj.{kind}"] = value[dim:]
    return out


def _load_vjepa_part(part: nn.Module, path: Path, key: str, rules: list[tuple[str, str | None]]) -> None:
    what = f"V-JEPA checkpoint's '{key}'"
    state = read_state_dict(path, what, unwrap=(key,), strip=("module.", "backbone."))
    renamed, origin = rename_keys(split_fused_qkv(state), rules)
    load_state(part, renamed, f"{what} {path}", origin=origin)


def load_official_vjepa(path: str | Path, *, config: vjepa.VJEPAConfig | None = None) -> vjepa.VJEPA:
    """A :class:`~attnlab.models.vjepa.vjepa.VJEPA` with the encoder, predictor and target encoder of a
    facebookresearch/jepa checkpoint (``{'encoder', 'predictor', 'target_encoder', ...}``, keys with
    ``module.`` and ``backbone.`` prefixes as training saves them).

    ``config`` defaults to the ``vjepa-vitl16`` preset and must fit the checkpoint; missing,
    unexpected or mis-shaped keys raise one-line InputErrors. A checkpoint without
    ``target_encoder`` starts the target as a copy of the encoder.
    """
    path = Path(path)
    model = vjepa.VJEPA(config or vjepa.VJEPAConfig())
    _load_vjepa_part(model.encoder, path, "encoder", vjepa.ENCODER_KEYS)
    _load_vjepa_part(model.predictor, path, "predictor", vjepa.PREDICTOR_KEYS)
    if "target_encoder" in _top_level_keys(path):
        _load_vjepa_part(model.target_encoder, path, "target_encoder", vjepa.ENCODER_KEYS)
    else:
        model.target_encoder.load_state_dict(model.encoder.state_dict())
    return model


def _top_level_keys(path: Path) -> set[str]:
    """The top-level keys of a torch checkpoint (a dict), read safely."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    return set(loaded) if isinstance(loaded, dict) else set()


def load_official_attentive_probe(model: AttentiveClassifier, path: str | Path) -> AttentiveClassifier:
    """``model`` holding an official V-JEPA ``AttentiveClassifier`` state dict, in place (the eval
    script's checkpoint ``{'classifier': ...}`` or the bare state dict, ``module.`` stripped).

    The official probe runs its ``depth - 1`` self-attention blocks on the pooled query and
    never applies its cross-attention's output projection (whose weights are dropped): build
    ``model`` with ``self_attn_on="queries", cross_out_proj=False``.
    """
    if not isinstance(model, AttentiveClassifier):
        raise InputError(
            f"load_official_attentive_probe takes an AttentiveClassifier, got {type(model).__name__}"
        )
    what = "V-JEPA attentive probe checkpoint"
    state = read_state_dict(path, what, unwrap=("classifier",), strip=("module.",))
    renamed, origin = rename_keys(split_fused_qkv(state), vjepa.PROBE_KEYS)
    load_state(model, renamed, f"{what} {path}", origin=origin)
    return model


def _read_vit_state(
    path: Path, what: str, rules: list[tuple[str, str | None]]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A DINO / MAE checkpoint's tensors, renamed for attnlab; one line when it is no ViT at all."""
    state = read_state_dict(
        path, what, unwrap=("teacher", "model", "state_dict"), strip=("module.", "backbone.")
    )
    if "patch_embed.proj.weight" not in state or not any(k.endswith("attn.qkv.weight") for k in state):
        shown = ", ".join(sorted(state)[:3]) or "none"
        raise InputError(
            f"{path} is not a ViT checkpoint (no patch_embed.proj.weight or blocks.N.attn.qkv; "
            f"its first keys: {shown})"
        )
    return rename_keys(split_fused_qkv(state), rules)


def load_official_vit(path: str | Path, config: image_vit.ImageViTConfig) -> image_vit.ImageViT:
    """An :class:`~attnlab.models.vit.image_vit.ImageViT` of ``config`` (e.g. ``image_vit.DINO_VIT_S8``,
    ``MAE_VIT_B16``) holding the backbone of a facebookresearch/dino or facebookresearch/mae checkpoint.

    Accepts the released backbones (bare state dicts), DINO's training checkpoint (the
    ``teacher``, ``module.`` / ``backbone.`` stripped, its head dropped) and MAE's ``{'model': ...}``
    (decoder and mask token dropped). Another architecture, a missing, unexpected or mis-shaped key:
    one-line InputErrors.
    """
    return load_official_vit_into(image_vit.ImageViT(config), path)


def load_official_vit_into(model: nn.Module, path: str | Path) -> image_vit.ImageViT:
    """``model`` (an ImageViT whose config fits the checkpoint) holding its weights, in place."""
    if not isinstance(model, image_vit.ImageViT):
        raise InputError(f"an official DINO/MAE ViT loads into an ImageViT, not {type(model).__name__}")
    what = "official ViT checkpoint"
    state, origin = _read_vit_state(Path(path), what, image_vit.OFFICIAL_KEYS)
    load_state(model, state, f"{what} {path}", origin=origin)
    return model


def load_official_mae(path: str | Path, config: mae.MAEConfig | None = None) -> mae.MAE:
    """A :class:`~attnlab.models.vit.mae.MAE` with the encoder and decoder of a facebookresearch/mae
    pre-training checkpoint (``{'model': ...}`` or the bare state dict); ``config`` defaults to
    ``mae_vit_base_patch16_dec512d8b`` and must fit it (``norm_pix_loss`` is not in the weights)."""
    model = mae.MAE(config or mae.MAE_VIT_BASE)
    what = "official MAE checkpoint"
    state, origin = _read_vit_state(Path(path), what, mae.OFFICIAL_KEYS)
    load_state(model, state, f"{what} {path}", origin=origin)
    return model


def load_official_sam(path: str | Path, config: sam.SamConfig | None = None) -> sam.Sam:
    """A :class:`~attnlab.models.sam.sam.Sam` of ``config`` (default ``SAM_VIT_B``; ``SAM_VIT_L``,
    ``SAM_VIT_H`` for the others) holding a facebookresearch/segment-anything checkpoint
    (``sam_vit_b_01ec64.pth`` ...), keys as they are (ours are the official names).

    With seed 004's prompt token in ``config`` the checkpoint may lack the token (it keeps its
    initialisation). Another layout, or a missing, unexpected or mis-shaped key: one-line InputError.
    """
    model = sam.Sam(config or sam.SAM_VIT_B)
    return load_official_sam_into(model, path)


def load_official_sam_into(model: nn.Module, path: str | Path) -> sam.Sam:
    """``model`` (a Sam whose config fits the checkpoint) holding its weights, in place."""
    if not isinstance(model, sam.Sam):
        raise InputError(f"an official SAM checkpoint loads into a Sam, not {type(model).__name__}")
    state = _sam_state(path)
    expected = model.state_dict()
    if not any(k.startswith("prompt_token.") for k in state):  # an official file: the token keeps its init
        expected = {k: v for k, v in expected.items() if not k.startswith("prompt_token.")}
    check_state_dict(expected, state, f"official SAM checkpoint {path}")
    model.load_state_dict(state, strict=False)  # every key of ``state`` was checked above
    return model


SAM_PRESETS = {
    "sam-vit-b": sam.SAM_VIT_B,
    "sam-vit-l": sam.SAM_VIT_L,
    "sam-vit-h": sam.SAM_VIT_H,
    "sam-small-reference": sam.SMALL_REFERENCE,  # the official code's small model of shared/reference/sam
}


def official_sam_preset(path: str | Path) -> str:
    """The registered SAM preset whose parameters have exactly the checkpoint's names and shapes
    (compared on the meta device, nothing allocated): ``sam-vit-b`` for ``sam_vit_b_01ec64.pth``."""
    shapes = {k: tuple(v.shape) for k, v in _sam_state(path).items()}
    for name, config in SAM_PRESETS.items():
        with torch.device("meta"):
            model = sam.Sam(config)
        if shapes == {k: tuple(v.shape) for k, v in model.state_dict().items()}:
            return name
    width = shapes.get("image_encoder.pos_embed", ("?",))[-1]
    raise InputError(f"{path}: no SAM preset ({', '.join(SAM_PRESETS)}) has this checkpoint's parameters "
                     f"(image encoder width {width})")  # fmt: skip


def _sam_state(path: str | Path) -> dict[str, torch.Tensor]:
    what = "official SAM checkpoint"
    state = read_state_dict(path, what, unwrap=("model", "state_dict"), strip=("module.",))
    if not any(k.startswith("image_encoder.") for k in state) or not any(
        k.startswith("mask_decoder.") for k in state
    ):
        shown = ", ".join(sorted(state)[:3]) or "none"
        raise InputError(
            f"{path} is not a SAM checkpoint (no image_encoder.* and mask_decoder.* keys; "
            f"its first keys: {shown})"
        )
    return state


def split_in_proj(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``nn.MultiheadAttention``'s packed ``*.in_proj_weight|bias`` (rows q, k, v) as ``*.q_proj.*``
    (rows [:D]) and ``*.kv_proj.*`` (rows [D:]), the layout of attnlab's MultiHeadAttention."""
    return _split_packed(state, r"(.*\.)?in_proj_(weight|bias)")


def load_official_aqt(path: str | Path, config: aqt.AQTConfig | None = None) -> aqt.ActionQTransformer:
    """An :class:`~attnlab.models.rl.aqt.ActionQTransformer` of ``config`` (default: the ``aqt-atari``
    preset, 6 actions, hidden 512) holding a machine-perception-robotics-group/Action-Q-Transformer
    state dict (the bare ``AQT`` state dict, or ``{"state_dict": ...}``; ``module.`` stripped).

    Returned in eval mode (NoisyLinear uses its means, as the release's evaluation). Missing,
    unexpected or mis-shaped keys: one-line InputError.
    """
    model = aqt.ActionQTransformer(config or aqt.AQTConfig())
    what = "official AQT checkpoint"
    state = read_state_dict(path, what, unwrap=("state_dict", "model"), strip=("module.",))
    renamed, origin = rename_keys(split_in_proj(state), aqt.OFFICIAL_KEYS)
    load_state(model, renamed, f"{what} {path}", origin=origin)
    return model.eval()
