"""The loss of SFA (Slots and Frames Attention; seed 000, eq. 3).

``L = sum_t (L_recon + L_pred + beta * L_prior)``: SFA has no mask network, so ViMON's
two mask terms are gone and the mixture weights are the softmax over slots of the
decoder's mask logits. Every term is computed as in
:func:`attnlab.objectives.object_centric.vimon_losses` (same likelihood, clamp and
normalisations), so SFA's numbers are comparable with ViMON's, as the seed compares
them (figs. 6-10):

- recon: :func:`mixture_nll` of frames 1..T-1, summed over pixels, / (B * (T - 1));
- pred: :func:`mixture_nll` of frames 3..T from the predictions made at frames
  2..T-1, / (B * (T - 2)); the prediction made at the first frame (from one frame,
  with no motion to go on) is not scored, as in ViMON's reference;
- kl: :func:`gaussian_kl` summed over latent dims, averaged over batch and frames,
  summed over slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from attnlab.errors import InputError
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.object_centric import (
    Likelihood,
    check_likelihood,
    decoded_sigmas,
    gaussian_kl,
    image_recon_pred,
    mixture_recon_pred,
    required_fields,
)
from attnlab.objectives.terms import weighted_sum


@dataclass
class SFALosses:
    """Unweighted terms and the weight that ``terms()`` applies."""

    recon: torch.Tensor
    pred: torch.Tensor
    kl: torch.Tensor
    beta: float

    def terms(self) -> dict[str, torch.Tensor]:
        """Named, weighted: recon + pred + beta * kl."""
        return {"recon": self.recon, "pred": self.pred, "kl": self.beta * self.kl}

    def total(self) -> torch.Tensor:
        return weighted_sum(self.terms())


def _check(output: ObjectCentricOutput, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The output checked against ``video``: its next_rgb and next_mask_logits."""
    rgb = output.rgb
    if rgb.dim() != 6 or rgb.shape[3] < 3:
        raise InputError(f"output.rgb must be (B, T, K, C >= 3, H, W), got {tuple(rgb.shape)}")
    B, T, K, C, H, W = rgb.shape
    if video.dim() != 5 or (video.shape[0], *video.shape[2:]) != (B, C, H, W):
        raise InputError(f"video {tuple(video.shape)} does not match the outputs {tuple(rgb.shape)}")
    if video.shape[1] != T + 1:
        raise InputError(
            f"video has {video.shape[1]} frames, the output needs {T + 1} (train on model(video[:, :-1]))"
        )
    if T < 2:
        raise InputError(f"SFA's loss needs a video of at least 3 frames, got {T + 1}")
    names = ("mask_logits", "next_mask_logits", "next_rgb")
    found = required_fields(output, names, "SFA's loss")
    for name, value in zip(names, found, strict=True):
        want = (B, T, K, C if name == "next_rgb" else 1, H, W)
        if tuple(value.shape) != want:
            raise InputError(f"output.{name} must be {want}, got {tuple(value.shape)}")
    if output.mu.shape != output.logvar.shape or output.mu.shape[:3] != (B, T, K):
        raise InputError(f"output.mu and output.logvar must be ({B}, {T}, {K}, D)")
    return found[2], found[1]


def sfa_losses(
    output: ObjectCentricOutput,
    video: torch.Tensor,
    *,
    sigmas: tuple[float, float] = (0.09, 0.11),
    beta: float = 1.0,
    min_likelihood: float = 1e-5,
    likelihood: Likelihood = "mixture",
) -> SFALosses:
    """SFA's training loss on ``video`` (B, T, C, H, W), T >= 3: the frames (C = 3), or what the
    task reconstructs beside them (the motion target: C = 5, as the decoder paints).

    ``output`` must come from the first T - 1 frames (``model(video[:, :-1])``): frame
    T is only a prediction target. ``sigmas``: the likelihood scale of slot 0 (the
    background) and of the other slots. ``beta``: the weight of the KL (1, as ViMON;
    the seed does not give SFA's). ``min_likelihood``: the floor of each pixel channel's
    likelihood (:func:`mixture_nll`; ViMON's 1e-5, 0 for none). ``likelihood="image"``
    replaces the per-pixel mixture by a Gaussian of the mixed image ``sum_k m_k rgb_k``
    (``output.recon`` and ``output.pred``) with the foreground sigma, Slot Attention's MSE
    up to scale: a slot can no longer lower the loss by painting a colour everywhere at a
    small weight, as it can in the mixture (docs/object_centric.md).
    """
    check_likelihood(likelihood)
    per_pixel = likelihood == "pixel_mixture"
    next_rgb, next_mask_logits = _check(output, video)
    if likelihood == "image":
        recon, pred = image_recon_pred(output, video, sigmas[1], "SFA's loss")
    else:
        sigma = decoded_sigmas(output.rgb, sigmas)
        log_masks = output.mask_logits.log_softmax(dim=2)  # (B, T-1, K, 1, H, W)
        next_log_masks = next_mask_logits.log_softmax(dim=2)
        recon, pred = mixture_recon_pred(
            video, (output.rgb, log_masks), (next_rgb, next_log_masks), sigma, min_likelihood, per_pixel
        )
    kl = gaussian_kl(output.mu, output.logvar).mean(dim=(0, 1)).sum()
    return SFALosses(recon=recon, pred=pred, kl=kl, beta=beta)
