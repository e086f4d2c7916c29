"""Output dataclasses shared by several model families."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, num_classes)
    features: torch.Tensor  # (B, D), the representation the head reads


def split_decoded(decoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoder output (2, B, T, K, 4, H, W) for z and z_pred -> rgb, mask logits, next rgb,
    next mask logits: (B, T, K, 3 | 1, H, W)."""
    # unbind and split, not indexing: each index's backward would write its gradient
    # into a zero-filled copy of the whole decoded tensor (0.4 s of a CPU training step).
    current, following = decoded.unbind(0)  # (B, T, K, 4, H, W) each
    rgb, logits = current.split([3, 1], dim=3)
    next_rgb, next_logits = following.split([3, 1], dim=3)
    return rgb, logits, next_rgb, next_logits


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

    @classmethod
    def from_decoded(
        cls, attn_log_masks: torch.Tensor, decoded: torch.Tensor, latents: torch.Tensor
    ) -> ViMONOutput:
        """From log masks (B, T, K, 1, H, W), decoded (2, B, T, K, 4, H, W) for z and z_pred,
        and latents (4, B, T, K, D): mu, logvar, z, z_pred."""
        curr_rgb, curr_logits, next_rgb, next_logits = split_decoded(decoded)
        curr_masks, next_masks = curr_logits.softmax(dim=2), next_logits.softmax(dim=2)
        attn_masks = attn_log_masks.exp()
        mu, logvar, z, z_pred = latents.unbind(0)
        return cls(
            curr_masks=curr_masks,
            next_masks=next_masks,
            attn_masks=attn_masks,
            recon_vae=(curr_masks * curr_rgb).sum(dim=2),
            recon_attn=(attn_masks * curr_rgb).sum(dim=2),
            pred_vae=(next_masks * next_rgb).sum(dim=2),
            curr_rgb=curr_rgb,
            next_rgb=next_rgb,
            curr_mask_logits=curr_logits,
            next_mask_logits=next_logits,
            attn_log_masks=attn_log_masks,
            mu=mu,
            logvar=logvar,
            z=z,
            z_pred=z_pred,
        )


@dataclass
class ABNOutput:
    """Attention Branch Networks (ResNet, WRN, DenseNet-BC, ResNeXt backbones)."""

    att_logits: torch.Tensor  # (B, num_classes), attention branch
    logits: torch.Tensor  # (B, num_classes), perception branch: the prediction
    attention: torch.Tensor  # (B, 1, h, w) in (0, 1), the branch's own M (never the override)
