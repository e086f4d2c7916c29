"""Losses of the mask-based object-centric models (MONet, ViMON and their descendants).

Pure functions on tensors; shapes use N for leading "image" dimensions (B or B, T),
K for slots, C for channels.

- :func:`mixture_nll`: ``-sum log max(sum_k w_k N(x; mu_k, sigma_k^2), 1e-5) / prod(N)``,
  a per-pixel, per-channel Gaussian mixture over slots with one sigma per slot, as
  ViMON's ``decoder_loglikelihood`` (ecker-lab/object-centric-representation-benchmark).
  We evaluate it in log space (logsumexp of log-weights plus log-densities, then the
  clamp as a maximum with log 1e-5): the same value, without the underflow of
  ``exp(-d^2 / 2 sigma^2)`` that the reference then clamps away. Its backward is
  written by hand (the responsibilities), which saves most of the memory and passes
  autograd would spend on (*N, K, C, H, W) intermediates.
- :func:`mask_kl`: ``KLDivLoss(reduction='batchmean')`` — the sum over everything of
  ``q (log q - log p)`` divided by the size of the first dimension. It takes the target
  as log-probabilities: the reference passes probabilities ``exp(log m)``, whose
  ``q log q`` has an infinite derivative where a mask underflows to 0 (NaN gradients);
  terms with q = 0 contribute 0 with a zero gradient.
- :func:`gaussian_kl`: ``KL(N(mu, exp(logvar)) || N(0, I))`` summed over the last dim.
- :func:`image_nll`: ``-log N(x; sum_k m_k rgb_k, sigma^2)``, a Gaussian of the mixed image
  (Slot Attention's MSE up to scale), the ``likelihood="image"`` alternative to the mixture:
  in the mixture a slot lowers the loss by painting a colour everywhere at a small weight,
  which held every model at the one-slot level on our sprites (docs/object_centric.md).
- :func:`vimon_losses` and :func:`monet_losses` assemble the terms of each model. The
  result keeps each term unweighted (as the reference logs them) and the weights; its
  ``terms()`` are the named, weighted terms that training sums, and ``total()`` is
  exactly that sum. Weights are applied here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch.autograd.function import once_differentiable

from attnlab.errors import InputError
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.terms import weighted_sum


def slot_sigmas(
    num_slots: int,
    *,
    background: float = 0.09,
    foreground: float = 0.11,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(K,): the likelihood scale of each slot; slot 0 models the background."""
    sigmas = torch.full((num_slots,), foreground, device=device, dtype=dtype)
    sigmas[0] = background
    return sigmas


def decoded_sigmas(rgb: torch.Tensor, sigmas: tuple[float, float]) -> torch.Tensor:
    """(K,) :func:`slot_sigmas` (background, foreground) for decoded RGB (B, T, K, 3, H, W), on its
    device and dtype."""
    return slot_sigmas(
        rgb.shape[2], background=sigmas[0], foreground=sigmas[1], device=rgb.device, dtype=rgb.dtype
    )


def mixture_nll(
    target: torch.Tensor,
    means: torch.Tensor,
    log_weights: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    min_likelihood: float = 1e-5,
    per_pixel: bool = False,
) -> torch.Tensor:
    """Negative log-likelihood of ``target`` under a per-pixel mixture, summed, / prod(N).

    target (*N, C, H, W); means (*N, K, C, H, W); log_weights (*N, K, 1 or C, H, W),
    normalised over K; sigmas (K,), a constant (no gradient). The likelihood of each
    pixel channel is clamped below at ``min_likelihood`` before the log, as the
    reference does. ``min_likelihood=0`` clamps nothing: the log-space evaluation needs
    no floor, and a pixel channel far from every slot's mean (more than about 0.56 for
    sigma 0.11 at the reference's 1e-5) then still has a gradient.

    ``per_pixel``: one mixture per pixel over its whole colour, ``log sum_k w_k prod_c N(x_c;
    mu_kc, sigma_k^2)``, as MONet's paper writes the likelihood (Burgess et al. 2019, eq. 3),
    where ViMON's code mixes each channel on its own; the floor then bounds each pixel's
    likelihood, and ``log_weights`` must be (*N, K, 1, H, W). With a mixture per channel,
    a pixel's red can come from one slot and its green from another; per pixel, a slot must
    explain the whole colour where it takes the pixel.
    """
    if means.dim() != target.dim() + 1 or means.shape[:-4] != target.shape[:-3]:
        raise InputError(f"means {tuple(means.shape)} must be target {tuple(target.shape)} with a slot dim")
    if means.shape[-3:] != target.shape[-3:] or sigmas.shape != means.shape[-4:-3]:
        raise InputError(
            f"means {tuple(means.shape)}, target {tuple(target.shape)} and sigmas "
            f"{tuple(sigmas.shape)} disagree"
        )
    if min_likelihood < 0:
        raise InputError(f"min_likelihood must be >= 0, got {min_likelihood}")
    floor = math.log(min_likelihood) if min_likelihood > 0 else -math.inf
    if per_pixel:
        if log_weights.shape[-3] != 1:
            raise InputError(
                f"per-pixel mixture weights must be (*N, K, 1, H, W), got {tuple(log_weights.shape)}"
            )
        total = _pixel_mixture_nll(target, means, log_weights, sigmas.detach(), floor)
    else:
        total = cast(torch.Tensor, _MixtureNLL.apply(target, means, log_weights, sigmas.detach(), floor))
    return total / math.prod(target.shape[:-3])


def _pixel_mixture_nll(
    target: torch.Tensor, means: torch.Tensor, log_weights: torch.Tensor, sigmas: torch.Tensor, floor: float
) -> torch.Tensor:
    """``-sum max(logsumexp_k (log w_k + sum_c log N(x_c; mu_kc, sigma_k^2)), floor)`` by autograd
    (the mixture has C times fewer terms than per channel, so the memory that the per-channel
    backward saves matters less here)."""
    sigma = sigmas[:, None, None, None]  # (K, 1, 1, 1)
    log_density = -0.5 * ((means - target.unsqueeze(-4)) / sigma).square() - torch.log(
        sigma * math.sqrt(2 * math.pi)
    )  # (*N, K, C, H, W)
    joint = log_density.sum(dim=-3, keepdim=True) + log_weights  # (*N, K, 1, H, W)
    return -torch.logsumexp(joint, dim=-4).clamp_min(floor).sum()


def _log_joint(
    target: torch.Tensor, means: torch.Tensor, log_weights: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """log w_k + log N(x; mu_k, sigma_k^2): (*N, K, C, H, W), in one fresh tensor."""
    sigma = sigmas[:, None, None, None]  # (K, 1, 1, 1)
    joint = means - target.unsqueeze(-4)  # (*N, K, C, H, W)
    joint.square_().mul_(-0.5 / sigma**2).sub_(torch.log(sigma * math.sqrt(2 * math.pi)))
    return joint.add_(log_weights)


class _MixtureNLL(torch.autograd.Function):
    """``-sum max(logsumexp_k log_joint, floor)`` with a hand-written backward.

    Autograd would keep about ten (*N, K, C, H, W) intermediates (difference, square,
    density, joint, exponentials) and run as many passes over them each way. This
    keeps only the inputs and the (*N, C, H, W) log-mixture, and recomputes the joint
    in the backward, where the gradients are the responsibilities r_k = softmax_k(joint):
    d/d log w_k = -r_k and d/d mu_k = r_k (mu_k - x) / sigma_k^2, zero where the floor
    holds (``clamp_min``'s convention: the gradient passes where the value >= floor).
    Tested against autograd on the eager formula and by gradcheck in float64.
    """

    @staticmethod
    def forward(
        ctx: Any,
        target: torch.Tensor,
        means: torch.Tensor,
        log_weights: torch.Tensor,
        sigmas: torch.Tensor,
        floor: float,
    ) -> torch.Tensor:
        log_mixture = torch.logsumexp(_log_joint(target, means, log_weights, sigmas), dim=-4)  # (*N, C, H, W)
        ctx.save_for_backward(target, means, log_weights, sigmas, log_mixture)
        ctx.floor = floor
        return -log_mixture.clamp_min(floor).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        target, means, log_weights, sigmas, log_mixture = ctx.saved_tensors
        live = log_mixture >= ctx.floor  # (*N, C, H, W): where the loss depends on the inputs
        # d(-log_mixture)/d joint_k = -r_k; 0 where clamped (log_mixture may be -inf there).
        scale = torch.where(live, -grad, 0.0).unsqueeze(-4)  # (*N, 1, C, H, W)
        centre = torch.where(live, log_mixture, 0.0).unsqueeze(-4)
        d_joint = _log_joint(target, means, log_weights, sigmas).sub_(centre).exp_().mul_(scale)
        sigma = sigmas[:, None, None, None]  # (K, 1, 1, 1)
        d_means = d_target = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # d joint_k / d mu_k = -(mu_k - x) / sigma_k^2
            d_means = (means - target.unsqueeze(-4)).div_(-(sigma**2)).mul_(d_joint)
            if ctx.needs_input_grad[0]:
                d_target = -d_means.sum(dim=-4)
            if not ctx.needs_input_grad[1]:
                d_means = None
        d_log_weights = d_joint.sum_to_size(log_weights.shape) if ctx.needs_input_grad[2] else None
        return d_target, d_means, d_log_weights, None, None


Likelihood = Literal["mixture", "pixel_mixture", "image"]


def image_nll(target: torch.Tensor, image: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(target; image, sigma^2) of (N..., C, H, W), summed over pixels and channels, / prod(N)."""
    nll = 0.5 * ((image - target) / sigma).square() + math.log(sigma * math.sqrt(2 * math.pi))
    return nll.sum() / math.prod(target.shape[:-3])


def image_recon_pred(
    output: ObjectCentricOutput, video: torch.Tensor, sigma: float, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`image_nll` of ``output.recon`` (frames 1..T-1) and of ``output.pred`` made at
    frames 2..T-1 (frames 3..T), for the losses that train on ``model(video[:, :-1])``."""
    (pred,) = required_fields(output, ("pred",), loss)
    return image_nll(video[:, :-1], output.recon, sigma), image_nll(video[:, 2:], pred[:, 1:], sigma)


def mixture_recon_pred(
    video: torch.Tensor,
    current: tuple[torch.Tensor, torch.Tensor],
    following: tuple[torch.Tensor, torch.Tensor],
    sigma: torch.Tensor,
    min_likelihood: float,
    per_pixel: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mixture_nll` of frames 1..T-1 under ``current`` (rgb, log masks) and of frames 3..T
    under the predictions made at frames 2..T-1, ``following`` (next rgb, next log masks), for the
    losses that train on ``model(video[:, :-1])``."""
    (rgb, log_masks), (next_rgb, next_log_masks) = current, following
    recon = mixture_nll(
        video[:, :-1], rgb, log_masks, sigma, min_likelihood=min_likelihood, per_pixel=per_pixel
    )
    pred = mixture_nll(
        video[:, 2:],
        next_rgb[:, 1:],
        next_log_masks[:, 1:],
        sigma,
        min_likelihood=min_likelihood,
        per_pixel=per_pixel,
    )
    return recon, pred


def check_likelihood(likelihood: str) -> None:
    if likelihood not in ("mixture", "pixel_mixture", "image"):
        raise InputError(f"likelihood must be 'mixture', 'pixel_mixture' or 'image', got {likelihood!r}")


def mask_kl(log_pred: torch.Tensor, log_target: torch.Tensor) -> torch.Tensor:
    """``KLDivLoss(reduction='batchmean')(log_pred, exp(log_target))``: sum q (log q - log p) / N0."""
    if log_pred.shape != log_target.shape:
        raise InputError(f"log_pred {tuple(log_pred.shape)} and log_target {tuple(log_target.shape)} differ")
    q = log_target.exp()
    # 0 log 0 = 0; masking the difference (not the product) keeps the gradient finite there too.
    difference = torch.where(q > 0, log_target - log_pred, torch.zeros_like(q))
    return (q * difference).sum() / log_pred.shape[0]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) for each vector: (..., D) -> (...)."""
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(dim=-1)


@dataclass
class ViMONLosses:
    """Unweighted terms (the reference's ``*_loss`` values) and the weights that ``terms()`` applies."""

    recon: torch.Tensor
    pred: torch.Tensor
    curr_mask: torch.Tensor
    next_mask: torch.Tensor
    kl: torch.Tensor
    beta: float
    gamma: float

    def terms(self) -> dict[str, torch.Tensor]:
        """Named, weighted: recon + pred + beta * kl + gamma * (curr_mask + next_mask)."""
        return {
            "recon": self.recon,
            "pred": self.pred,
            "kl": self.beta * self.kl,
            "mask": self.gamma * (self.curr_mask + self.next_mask),
        }

    def total(self) -> torch.Tensor:
        return weighted_sum(self.terms())


@dataclass
class MONetLosses:
    """Unweighted terms and the weights that ``terms()`` applies."""

    recon: torch.Tensor
    kl: torch.Tensor
    mask: torch.Tensor
    beta: float
    gamma: float

    def terms(self) -> dict[str, torch.Tensor]:
        """Named, weighted: recon + beta * kl + gamma * mask."""
        return {"recon": self.recon, "kl": self.beta * self.kl, "mask": self.gamma * self.mask}

    def total(self) -> torch.Tensor:
        return weighted_sum(self.terms())


def _check_video(video: torch.Tensor, rgb: torch.Tensor, encoded: int) -> None:
    if (
        video.dim() != 5
        or rgb.dim() != 6
        or video.shape[0] != rgb.shape[0]
        or video.shape[2:] != rgb.shape[3:]
    ):
        raise InputError(f"video {tuple(video.shape)} does not match the outputs {tuple(rgb.shape)}")
    if video.shape[1] != encoded:
        raise InputError(f"video has {video.shape[1]} frames, the output needs {encoded}")


def required_fields(output: ObjectCentricOutput, names: tuple[str, ...], loss: str) -> list[torch.Tensor]:
    """The output's ``names`` fields, or a one-line InputError naming the first that is None."""
    values = [getattr(output, name) for name in names]
    for name, value in zip(names, values, strict=True):
        if value is None:
            raise InputError(f"{loss} needs output.{name}, which this model does not produce")
    return values


def vimon_losses(
    output: ObjectCentricOutput,
    video: torch.Tensor,
    *,
    sigmas: tuple[float, float] = (0.09, 0.11),
    beta: float = 1.0,
    gamma: float = 2.0,
    min_likelihood: float = 1e-5,
    likelihood: Likelihood = "mixture",
) -> ViMONLosses:
    """ViMON's training loss on ``video`` (B, T, 3, H, W), T >= 3.

    ``output`` must come from the first T - 1 frames (``model(video[:, :-1])``): frame T
    is only a prediction target. As the reference: the reconstruction over frames
    1..T-1, the prediction of frames 3..T (the prediction made at the first frame is
    not scored), the mask KLs divided by T - 1 and T - 2, the Gaussian KL averaged over
    batch and frames and summed over slots; mixture weights are the decoder's masks.
    ``likelihood="image"``: recon and pred are :func:`image_nll` of ``output.recon`` and
    ``output.pred`` with the foreground sigma instead (not the reference's).
    """
    check_likelihood(likelihood)
    per_pixel = likelihood == "pixel_mixture"
    next_rgb, next_mask_logits, attn_log_masks = required_fields(
        output, ("next_rgb", "next_mask_logits", "attn_log_masks"), "ViMON's loss"
    )
    steps = output.rgb.shape[1]
    _check_video(video, output.rgb, steps + 1)
    if steps < 2:
        raise InputError(f"ViMON's loss needs a video of at least 3 frames, got {steps + 1}")
    sigma = decoded_sigmas(output.rgb, sigmas)
    curr_log_masks = output.mask_logits.log_softmax(dim=2)  # (B, T-1, K, 1, H, W)
    next_log_masks = next_mask_logits.log_softmax(dim=2)
    if likelihood == "image":
        recon, pred = image_recon_pred(output, video, sigmas[1], "ViMON's loss")
    else:
        recon, pred = mixture_recon_pred(
            video, (output.rgb, curr_log_masks), (next_rgb, next_log_masks), sigma, min_likelihood, per_pixel
        )
    curr_mask = mask_kl(curr_log_masks, attn_log_masks) / steps
    next_mask = mask_kl(next_log_masks[:, 1:-1], attn_log_masks[:, 2:]) / (steps - 1)
    kl = gaussian_kl(output.mu, output.logvar).mean(dim=(0, 1)).sum()
    return ViMONLosses(
        recon=recon, pred=pred, curr_mask=curr_mask, next_mask=next_mask, kl=kl, beta=beta, gamma=gamma
    )


def monet_losses(
    output: ObjectCentricOutput,
    video: torch.Tensor,
    *,
    sigmas: tuple[float, float] = (0.09, 0.11),
    beta: float = 0.5,
    gamma: float = 0.5,
    min_likelihood: float = 1e-5,
    likelihood: Likelihood = "mixture",
) -> MONetLosses:
    """MONet's loss (Burgess et al. 2019, eq. 3) on ``video`` (B, T, 3, H, W), per image.

    Mixture weights are the attention masks; the mask term is KL(attention masks ||
    softmax of the decoder's mask logits); every term is summed over pixels and slots
    and averaged over the B * T images. ``likelihood="image"``: recon is :func:`image_nll` of
    the image mixed by the attention masks, ``sum_k m_k rgb_k``, with the foreground sigma.
    """
    check_likelihood(likelihood)
    per_pixel = likelihood == "pixel_mixture"
    (attn_log_masks,) = required_fields(output, ("attn_log_masks",), "MONet's loss")
    _check_video(video, output.rgb, output.rgb.shape[1])
    sigma = decoded_sigmas(output.rgb, sigmas)
    if likelihood == "image":
        recon = image_nll(video, (attn_log_masks.exp() * output.rgb).sum(dim=2), sigmas[1])
    else:
        recon = mixture_nll(
            video, output.rgb, attn_log_masks, sigma, min_likelihood=min_likelihood, per_pixel=per_pixel
        )
    decoder_log_masks = output.mask_logits.log_softmax(dim=2).flatten(0, 1)  # (B*T, K, 1, H, W)
    mask = mask_kl(decoder_log_masks, attn_log_masks.flatten(0, 1))
    kl = gaussian_kl(output.mu, output.logvar).mean(dim=(0, 1)).sum()
    return MONetLosses(recon=recon, kl=kl, mask=mask, beta=beta, gamma=gamma)
