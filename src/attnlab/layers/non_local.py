"""Non-local block (Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018, arXiv:1711.07971).

For every position i of a (B, C, *spatial) map (1D sequence, 2D image, 3D video):

    y_i = 1 / C(x) * sum_j f(x_i, x_j) g(x_j),        z_i = W_z y_i + x_i

with theta, phi, g 1x1 convolutions to ``inter_channels`` and four pairwise functions:

* ``"gaussian"``: f = exp(x_i^T x_j) on the raw features (theta, phi are identities),
  C(x) = sum_j f, i.e. a softmax over j;
* ``"embedded_gaussian"``: f = exp(theta(x_i)^T phi(x_j)), softmax over j (no 1/sqrt(d));
* ``"dot_product"``: f = theta(x_i)^T phi(x_j), C(x) = N;
* ``"concatenation"``: f = ReLU(w_f^T [theta(x_i), phi(x_j)]), C(x) = N.

W_z is a 1x1 convolution followed by BatchNorm whose gamma starts at zero, so the block
starts as the identity (paper, Sec. 4.1); with ``norm=False`` W_z itself starts at zero.

Reference implementations: facebookresearch/video-nonlocal-net (Caffe2) and the widely
used AlexHex7/Non-local_pytorch. Choices where the paper leaves room:

* ``sub_sample`` max-pools phi and g (after their convolutions) by 2 in every spatial
  dimension, except time for 3D inputs, which keeps its length (pool (1, 2, 2)), as the
  paper's video models do.
* N in the 1/N normalisation is the number of key positions, i.e. after sub-sampling
  (it equals the paper's "number of positions in x" without ``sub_sample``).
* The Gaussian modes use ``F.scaled_dot_product_attention`` with ``scale=1.0``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention

NonLocalMode = Literal["embedded_gaussian", "dot_product", "concatenation", "gaussian"]
_SOFTMAX_MODES = ("embedded_gaussian", "gaussian")
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _pool(ndim: int) -> nn.Module:
    # Video blocks pool space only, so the temporal resolution of the keys is kept.
    if ndim == 1:
        return nn.MaxPool1d(2)
    if ndim == 2:
        return nn.MaxPool2d(2)
    return nn.MaxPool3d((1, 2, 2))


class NonLocalBlock(RecordsAttention):
    """Residual non-local block on (B, dim, *spatial) with ``ndim`` spatial dims; same shape out.

    Records the normalised pairwise weights f(x_i, x_j) / C(x) as (B, N, Nk): N query
    positions (flattened row-major over the spatial dims) by Nk key positions (N, or the
    pooled count with ``sub_sample``). Rows sum to 1 in the Gaussian modes.
    """

    def __init__(
        self,
        dim: int,
        *,
        inter_channels: int | None = None,
        mode: NonLocalMode = "embedded_gaussian",
        ndim: int = 2,
        sub_sample: bool = False,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if mode not in get_args(NonLocalMode):
            raise InputError(f"mode must be one of {get_args(NonLocalMode)}, got {mode!r}")
        if ndim not in _CONV:
            raise InputError(f"ndim must be 1, 2 or 3, got {ndim}")
        inter = inter_channels if inter_channels is not None else max(dim // 2, 1)
        if dim < 1 or inter < 1:
            raise InputError(f"dim and inter_channels must be >= 1, got {dim}, {inter}")
        conv = _CONV[ndim]
        self.dim, self.inter_channels, self.mode, self.ndim = dim, inter, mode, ndim
        self.sub_sample = sub_sample
        # The Gaussian mode compares raw features, so theta and phi are identities.
        embed = mode != "gaussian"
        self.theta: nn.Module = conv(dim, inter, 1) if embed else nn.Identity()
        self.phi: nn.Module = conv(dim, inter, 1) if embed else nn.Identity()
        self.g = conv(dim, inter, 1)
        self.pool: nn.Module = _pool(ndim) if sub_sample else nn.Identity()
        key_dim = inter if embed else dim
        self.concat_project = nn.Linear(2 * key_dim, 1, bias=False) if mode == "concatenation" else None
        self.proj = conv(inter, dim, 1)
        self.proj_norm: nn.Module = nn.Identity()
        # z = x at initialisation, so the block can be inserted into a pre-trained network.
        if norm:
            bn = _NORM[ndim](dim)
            nn.init.zeros_(bn.weight)
            self.proj_norm = bn
        else:
            for param in self.proj.parameters():
                nn.init.zeros_(param)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != self.ndim + 2 or x.shape[1] != self.dim or not x.is_floating_point():
            raise InputError(
                f"x must be floating (B, {self.dim}, *spatial) with {self.ndim} spatial dims, "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        pooled = x.shape[3:] if self.ndim == 3 else x.shape[2:]
        if self.sub_sample and min(pooled) < 2:
            raise InputError(f"sub_sample needs pooled spatial sizes >= 2, got {tuple(x.shape[2:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, Ci)
        k = self.pool(self.phi(x)).flatten(2).transpose(1, 2)  # (B, Nk, Ci)
        v = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (B, Nk, Ci)
        if self.mode in _SOFTMAX_MODES and not self._recording_differentiable:
            if self._recording:
                self._record(self._pairwise(q, k))
            y = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, N, Ci)
        else:
            w = self._pairwise(q, k)  # (B, N, Nk)
            self._record(w)
            y = w @ v  # (B, N, Ci)
        y = y.transpose(1, 2).reshape(x.shape[0], self.inter_channels, *x.shape[2:])  # (B, Ci, *spatial)
        return x + self.proj_norm(self.proj(y))

    def _pairwise(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """f(x_i, x_j) / C(x) for (B, N, D) queries and (B, Nk, D) keys -> (B, N, Nk)."""
        if self.mode in _SOFTMAX_MODES:
            logits = q @ k.transpose(1, 2)  # (B, N, Nk)
            # Half precision is normalised in float32; float64 stays float64.
            return logits.softmax(-1, dtype=torch.promote_types(logits.dtype, torch.float32)).to(q.dtype)
        if self.concat_project is None:
            return (q @ k.transpose(1, 2)) / k.shape[1]  # (B, N, Nk)
        # w_f^T [a; b] = w_a^T a + w_b^T b, so the N x Nk concatenations are never built.
        w_q, w_k = self.concat_project.weight.view(2, -1)  # (D,), (D,)
        f = F.relu((q @ w_q)[:, :, None] + (k @ w_k)[:, None, :])  # (B, N, Nk)
        return f / k.shape[1]
