"""The objects' motion as an image: what SAVi reconstructs beside (or instead of) the frame.

SAVi (Kipf et al. 2022) trains its slots to predict optical flow, rendered by the simulator: two
objects that look alike but move apart then cannot share a slot without a cost. Our generators
render no flow, but their masks track each object, so :func:`object_motion` paints every pixel of
an object with the motion of the object's centre from the previous frame to this one (rotation
ignored), and the background with 0. It looks back, as SAVi's flow does: a causal model that has seen
frames 1..t can tell the motion into frame t, never the motion out of it. It is a training target only
(``task.motion_weight``): the model still sees the frames alone (docs/video_reasoning.md, issue 16
part 3).
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError
from attnlab.models.object_centric.spread import slot_spread


def object_motion(masks: torch.Tensor) -> torch.Tensor:
    """Masks (B, T, 1 + K, H, W), channel 0 the background, T >= 2 -> motion (B, T, 2, H, W).

    Pixel (y, x) of object k in frame t holds c_k(t) - c_k(t - 1), c_k the centre of mass of the
    object's mask in (y, x) coordinates in [0, 1]; 0 in the first frame (nothing to come from), on the
    background and for an object missing from either frame of the pair."""
    if masks.dim() != 5 or masks.shape[1] < 2 or masks.shape[2] < 2:
        raise InputError(f"masks must be (B, T >= 2, 1 + K, H, W), got {tuple(masks.shape)}")
    objects = masks[:, :, 1:].to(torch.float32)  # (B, T, K, H, W)
    H, W = objects.shape[-2:]
    area = objects.sum(dim=(-2, -1))  # (B, T, K)
    ys = torch.linspace(0, 1, H, device=masks.device)
    xs = torch.linspace(0, 1, W, device=masks.device)
    centre = (
        torch.stack([(objects.sum(-1) * ys).sum(-1), (objects.sum(-2) * xs).sum(-1)], dim=-1)
        / area.clamp_min(1)[..., None]
    )  # (B, T, K, 2)
    step = centre[:, 1:] - centre[:, :-1]  # (B, T - 1, K, 2): into frames 2..T
    seen = (area[:, 1:] > 0) & (area[:, :-1] > 0)  # (B, T - 1, K)
    step = step * seen[..., None]
    step = torch.cat([torch.zeros_like(step[:, :1]), step], dim=1)  # (B, T, K, 2): 0 into frame 1
    return torch.einsum("btkhw,btkc->btchw", objects, step)  # (B, T, 2, H, W)


def slot_motion_spread(masks: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """Masks (B, T, K, 1, H, W) summing to 1 over K, motion (B, T, 2, H, W) -> (B, T): how far the
    motion of the pixels each slot holds is from one motion per slot, sum_k sum_p m_kp |f_p - mu_k|^2.

    mu_k, the mask-weighted mean of the motion, is the least-squares translation of slot k's pixels,
    fitted in closed form as Guess What Moves (Choudhury et al. 2022, arXiv:2205.07844) fits a
    parametric flow to each segment (theirs affine or quadratic, ours a translation: each object of
    the target moves as one). The spread is k-means' objective on the motion with the slots as
    clusters: 0 when every slot holds pixels of one motion, and a slot holding two objects that move
    apart pays for it, whatever a decoder could paint. The gradient through mu_k is 0 (it is the
    minimiser), so only the masks learn from it."""
    if motion.dim() != 5 or motion.shape[2] != 2:
        raise InputError(f"motion must be (B, T, 2, H, W), got {tuple(motion.shape)}")
    return slot_spread(masks, motion).sum(dim=2)
