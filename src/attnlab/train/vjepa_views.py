"""What a frozen video encoder is shown at evaluation time, besides the clip itself (V-JEPA, Bardes
et al. 2024, arXiv:2404.08471, Sec. 4 and Appendix C; facebookresearch/jepa ``evals/``):

* views: several temporal clips and spatial crops of one video, whose probe predictions are
  averaged. A datamodule that reads long videos provides them (``views`` in its batches,
  :mod:`attnlab.data.video_folder`); :func:`shifted_views` makes spatial ones from any clip
  (crops of the clip padded at its left and right edges, the official left/centre/right crops
  for a clip that has no wider frame around it);
* still clips: an image repeated over the clip's frames (the official
  ``image_classification_frozen`` repeats every image ``frames_per_clip`` times), here a frame of
  a video clip, for the paper's image evaluation on video data.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from attnlab.errors import ConfigError


def shifted_views(clips: torch.Tensor, num_views: int, shift: int) -> torch.Tensor:
    """Clips (B, C, T, H, W) -> (B, V, C, T, H, W): V crops of width W taken at offsets spread
    evenly over [0, 2 * shift] of the clip edge-padded by ``shift`` columns on either side. The
    middle offset is the clip itself (V odd); V = 1 gives the clip unchanged."""
    if num_views == 1:
        return clips[:, None]
    w = clips.shape[-1]
    edge = torch.arange(-shift, w + shift, device=clips.device).clamp(0, w - 1)  # replicate the edges
    padded = clips[..., edge]  # (B, C, T, H, W + 2 shift)
    offsets = [round(i * 2 * shift / (num_views - 1)) for i in range(num_views)]
    return torch.stack([padded[..., o : o + w] for o in offsets], dim=1)


def evaluation_views(batch: Mapping[str, torch.Tensor], num_views: int, shift: int) -> torch.Tensor:
    """Every view of every sample (B, V, C, T, H, W): the datamodule's ``views`` (else the clip),
    each shown as ``num_views`` shifted crops (V = data views x num_views)."""
    views = batch["views"] if "views" in batch else batch["input"][:, None]  # (B, V_data, C, T, H, W)
    if num_views == 1:
        return views
    b, v = views.shape[:2]
    shifted = shifted_views(views.flatten(0, 1), num_views, shift)  # (B * V_data, num_views, C, T, H, W)
    return shifted.unflatten(0, (b, v)).flatten(1, 2)


def repeat_image(images: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Images (B, C, H, W) -> still clips (B, C, T, H, W): each image repeated ``num_frames`` times."""
    return images.unsqueeze(2).expand(-1, -1, num_frames, -1, -1).contiguous()


def still_clips(clips: torch.Tensor, frame: int) -> torch.Tensor:
    """Clips (B, C, T, H, W) -> (B, C, T, H, W) holding frame ``frame`` of each clip T times."""
    t = clips.shape[2]
    if not -t <= frame < t:
        raise ConfigError(f"task.probe.image_frame={frame} is outside the clip's {t} frames")
    return repeat_image(clips[:, :, frame], t)
