"""Output dataclasses shared by several model families."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_classes)
    features: torch.Tensor  # (B, D), the representation the head reads


@dataclass
class ViMONOutput:
    """Everything per frame t of the input (T frames, K slots)."""

    curr_masks: torch.Tensor  # (B, T, K, 1, H, W) softmax over slots of the decoder's mask logits
    next_masks: torch.Tensor  # (B, T, K, 1, H, W) the same for the prediction of frame t + 1
    attn_masks: torch.Tensor  # (B, T, K, 1, H, W) the attention network's masks
    recon_vae: torch.Tensor  # (B, T, 3, H, W) sum_k curr_masks * curr_rgb
    recon_attn: torch.Tensor  # (B, T, 3, H, W) sum_k attn_masks * curr_rgb
    pred_vae: torch.Tensor  # (B, T, 3, H, W) sum_k next_masks * next_rgb: frame t + 1
    curr_rgb: torch.Tensor  # (B, T, K, 3, H, W) decoded RGB means
    next_rgb: torch.Tensor  # (B, T, K, 3, H, W)
    curr_mask_logits: torch.Tensor  # (B, T, K, 1, H, W)
    next_mask_logits: torch.Tensor  # (B, T, K, 1, H, W)
    attn_log_masks: torch.Tensor  # (B, T, K, 1, H, W)
    mu: torch.Tensor  # (B, T, K, D)
    logvar: torch.Tensor  # (B, T, K, D)
    z: torch.Tensor  # (B, T, K, D) the latent decoded for frame t
    z_pred: torch.Tensor  # (B, T, K, D) the latent decoded for frame t + 1


@dataclass
class ABNOutput:
    """Attention Branch Networks (ResNet, WRN, DenseNet-BC, ResNeXt backbones)."""

    att_logits: torch.Tensor  # (B, num_classes), attention branch
    logits: torch.Tensor  # (B, num_classes), perception branch: the prediction
    attention: torch.Tensor  # (B, 1, h, w) in (0, 1), the branch's own M (never the override)
