"""Local self-attention of SAN (Zhao, Jia, Koltun, "Exploring Self-attention for Image
Recognition", CVPR 2020, arXiv:2004.13621), in pure PyTorch for 1D (B, C, L) and 2D
(B, C, H, W) inputs. The official code (hszhao/SAN) runs on CUDA-only CuPy kernels.

For every position i with footprint R(i) (a ``kernel_size`` window with ``dilation``,
reflection-padded at the borders, as the official ``*_refpad`` kernels):

    y_i = sum_{j in R(i)} alpha(x_i, x_j) ⊙ beta(x_j)                       (pairwise, Eq. 2)
    y_i = sum_{j in R(i)} alpha(x_R(i))_j ⊙ beta(x_j)                      (patchwise, Eq. 4)

In 1D the sum over the footprint runs without unfolding the values into a (B, C, K, N) copy
(:func:`attnlab.layers._aggregation.aggregate_1d`, SAN's CUDA aggregation kernel in PyTorch).

beta is a 1x1 convolution to ``out_dim`` channels. alpha has A = out_dim / share_planes
attention channels; output channel c uses attention channel c mod A (the official
aggregation kernel's sharing), and the weights are a softmax over the footprint.

* Pairwise: alpha(x_i, x_j) = gamma([delta(phi(x_i), psi(x_j)), pos_ij]) with the
  relation delta "subtraction" (the paper's choice and the official code), "summation" or
  "concatenation", and pos_ij = P(c_i - c_j): pixel coordinates normalised to [-1, 1]
  per axis (width coordinate first, as the official ``position``), mapped by a learned
  linear layer P. c_j is the coordinate of the pixel the footprint actually reads, so
  at the borders it is the reflected pixel's, as in the official kernels. ``position=False``
  drops pos_ij (gamma sees the relation alone), as the 1D-SAB of seed 001 describes it.
* Patchwise: alpha(x_R(i)) = gamma([phi(x_i), psi(x_j) for j in R(i)]) (the paper's
  concatenation relation), giving a weight per footprint position and attention channel;
  the concatenation order encodes position, so there is no position term.

gamma = BN-ReLU-1x1 conv-BN-ReLU-1x1 conv, as the official ``conv_w``. Deviations from
the official code: P has no bias (it cancels in P c_i - P c_j); the patchwise layer pads
by dilation * (kernel_size // 2) (the official ``ReflectionPad2d(kernel_size // 2)`` only
fits dilation 1); the patchwise weights are softmax-normalised by default (the official
patchwise layer uses gamma's raw output; ``softmax=False`` reproduces it); no stride
(SAN always attends at stride 1 and downsamples with pooling between stages).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._aggregation import aggregate_1d
from attnlab.layers._recording import RecordsAttention

Relation = Literal["subtraction", "summation", "concatenation"]


def footprint(x: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    """Reflection-padded local windows: (B, C, L) or (B, C, H, W) -> (B, C, K, N).

    K = kernel_size**ndim footprint offsets in row-major order (as ``F.unfold``), N the
    positions flattened row-major. Window k of position i reads the pixel at
    i + dilation * (offset_k - kernel_size // 2), reflected (without repeating the edge)
    when it falls outside.
    """
    pad = dilation * (kernel_size // 2)
    if x.dim() == 3:
        padded = F.pad(x, (pad, pad), mode="reflect")  # (B, C, L + 2p)
        windows = padded.unfold(2, 2 * pad + 1, 1)[..., ::dilation]  # (B, C, L, K)
        return windows.transpose(2, 3)  # (B, C, K, L)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")  # (B, C, H + 2p, W + 2p)
    cols = F.unfold(padded, kernel_size, dilation=dilation)  # (B, C * K, H * W)
    return cols.view(x.shape[0], x.shape[1], kernel_size**2, -1)  # (B, C, K, N)


def _coordinates(x: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates in [-1, 1]: (1, ndim, *spatial), the last (width) axis first as in SAN."""
    axes = [torch.linspace(-1.0, 1.0, n, dtype=x.dtype, device=x.device) for n in x.shape[2:]]
    grids = torch.meshgrid(*axes, indexing="ij")  # ndim x (*spatial)
    return torch.stack(grids[::-1])[None]  # (1, ndim, *spatial)


def _gamma(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    # Applied to (B, channels, K, N) maps for 1D and 2D inputs alike, so always 2D ops.
    return nn.Sequential(
        nn.BatchNorm2d(in_dim),
        nn.ReLU(),
        nn.Conv2d(in_dim, hidden, 1, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(),
        nn.Conv2d(hidden, out_dim, 1),
    )


class _LocalSelfAttention(RecordsAttention):
    """Shared parts of the SAN layers: phi, psi, beta, checks, softmax and aggregation."""

    def __init__(
        self,
        dim: int,
        out_dim: int | None,
        rel_dim: int | None,
        share_planes: int,
        kernel_size: int,
        dilation: int,
        ndim: int,
    ) -> None:
        super().__init__()
        out_dim = out_dim if out_dim is not None else dim
        rel_dim = rel_dim if rel_dim is not None else max(dim // 16, 1)
        if ndim not in (1, 2):
            raise InputError(f"ndim must be 1 or 2, got {ndim}")
        if min(dim, out_dim, rel_dim, share_planes) < 1 or out_dim % share_planes:
            raise InputError(
                f"need positive dims and out_dim divisible by share_planes, got dim={dim}, "
                f"out_dim={out_dim}, rel_dim={rel_dim}, share_planes={share_planes}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0 or dilation < 1:
            raise InputError(f"kernel_size must be odd and dilation >= 1, got {kernel_size}, {dilation}")
        conv = nn.Conv1d if ndim == 1 else nn.Conv2d
        self.dim, self.out_dim, self.rel_dim, self.ndim = dim, out_dim, rel_dim, ndim
        self.share_planes, self.kernel_size, self.dilation = share_planes, kernel_size, dilation
        self.attn_dim = out_dim // share_planes
        self.footprint_size = kernel_size**ndim
        self.phi = conv(dim, rel_dim, 1)
        self.psi = conv(dim, rel_dim, 1)
        self.beta = conv(dim, out_dim, 1)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != self.ndim + 2 or x.shape[1] != self.dim or not x.is_floating_point():
            names = "L" if self.ndim == 1 else "H, W"
            raise InputError(f"x must be floating (B, {self.dim}, {names}), got {x.dtype} {tuple(x.shape)}")
        pad = self.dilation * (self.kernel_size // 2)
        if min(x.shape[2:]) <= pad:
            raise InputError(
                f"reflection padding {pad} needs spatial sizes > {pad}, got {tuple(x.shape[2:])}"
            )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _normalise(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=2)  # over the footprint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        w = self._normalise(self._logits(x))  # (B, A, K, N)
        self._record(w)
        if self.ndim == 1:  # no (B, C_out, K, N) copy of the values (layers/_aggregation.py)
            return aggregate_1d(self.beta(x), w, self.kernel_size, self.dilation)
        v = footprint(self.beta(x), self.kernel_size, self.dilation)  # (B, C_out, K, N)
        # Output channel c = s * A + a uses attention channel a = c mod A.
        v = v.reshape(v.shape[0], self.share_planes, self.attn_dim, *v.shape[2:])  # (B, S, A, K, N)
        y = (v * w[:, None]).sum(dim=3)  # (B, S, A, N)
        return y.reshape(x.shape[0], self.out_dim, *x.shape[2:])  # (B, C_out, *spatial)


class PairwiseSelfAttention(_LocalSelfAttention):
    """SAN pairwise self-attention on (B, dim, L) (``ndim=1``) or (B, dim, H, W); spatial size kept.

    Records the weights as (B, A, K, N): A = out_dim / share_planes attention channels,
    K = kernel_size**ndim footprint offsets (row-major), N positions (row-major); they
    sum to 1 over K.
    """

    def __init__(
        self,
        dim: int,
        *,
        out_dim: int | None = None,
        rel_dim: int | None = None,
        share_planes: int = 8,
        kernel_size: int = 3,
        dilation: int = 1,
        ndim: int = 2,
        relation: Relation = "subtraction",
        position: bool = True,
    ) -> None:
        super().__init__(dim, out_dim, rel_dim, share_planes, kernel_size, dilation, ndim)
        if relation not in get_args(Relation):
            raise InputError(f"relation must be one of {get_args(Relation)}, got {relation!r}")
        self.relation = relation
        rel_channels = 2 * self.rel_dim if relation == "concatenation" else self.rel_dim
        self.pos_proj = nn.Conv2d(ndim, ndim, 1, bias=False) if position else None
        pos_channels = ndim if position else 0
        self.gamma = _gamma(rel_channels + pos_channels, self.rel_dim, self.attn_dim)

    def _relate(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """delta(phi(x_i), psi(x_j)) for (B, R, 1, N) and (B, R, K, N) -> (B, R or 2R, K, N)."""
        if self.relation == "subtraction":
            return q - k
        if self.relation == "summation":
            return q + k
        return torch.cat([q.expand_as(k), k], dim=1)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        q = self.phi(x).flatten(2)[:, :, None]  # (B, R, 1, N)
        k = footprint(self.psi(x), self.kernel_size, self.dilation)  # (B, R, K, N)
        relation = self._relate(q, k)
        if self.pos_proj is None:
            return self.gamma(relation)  # (B, A, K, N)
        coords = _coordinates(x)  # (1, ndim, *spatial)
        offsets = coords.flatten(2)[:, :, None] - footprint(coords, self.kernel_size, self.dilation)
        pos = self.pos_proj(offsets).expand(x.shape[0], -1, -1, -1)  # (B, ndim, K, N)
        return self.gamma(torch.cat([relation, pos], dim=1))  # (B, A, K, N)


class PatchwiseSelfAttention(_LocalSelfAttention):
    """SAN patchwise self-attention on (B, dim, L) (``ndim=1``) or (B, dim, H, W); spatial size kept.

    Records the weights as (B, A, K, N): A = out_dim / share_planes attention channels,
    K = kernel_size**ndim footprint offsets (row-major), N positions (row-major); they
    sum to 1 over K unless ``softmax=False`` (the official code's raw weights).
    """

    def __init__(
        self,
        dim: int,
        *,
        out_dim: int | None = None,
        rel_dim: int | None = None,
        share_planes: int = 8,
        kernel_size: int = 3,
        dilation: int = 1,
        ndim: int = 2,
        softmax: bool = True,
    ) -> None:
        super().__init__(dim, out_dim, rel_dim, share_planes, kernel_size, dilation, ndim)
        self.softmax = softmax
        patch_channels = self.rel_dim * (self.footprint_size + 1)
        self.gamma = _gamma(patch_channels, self.attn_dim, self.footprint_size * self.attn_dim)

    def _normalise(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=2) if self.softmax else logits

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        B, K = x.shape[0], self.footprint_size
        q = self.phi(x).flatten(2)[:, :, None]  # (B, R, 1, N)
        # Channel r * K + k holds psi_r at footprint offset k, the official layout.
        patch = footprint(self.psi(x), self.kernel_size, self.dilation).flatten(1, 2)[:, :, None]
        logits = self.gamma(torch.cat([q, patch], dim=1))  # (B, A * K, 1, N)
        return logits.view(B, self.attn_dim, K, -1)  # (B, A, K, N)


def attention_received(
    weights: torch.Tensor, sizes: tuple[int, ...], kernel_size: int, dilation: int
) -> torch.Tensor:
    """How much attention each position receives: (B, A, K, N) weights -> (B, A, N).

    Position j receives sum over queries i and offsets k whose footprint reads j of w[i, k],
    following the same reflection as :func:`footprint` (a border pixel read twice receives
    twice). With softmax weights the result sums to N over positions: a uniform layer gives 1
    everywhere in the interior, so values above 1 mark positions the layer looks at more.
    """
    B, A, K, N = weights.shape
    positions = torch.arange(N, dtype=weights.dtype, device=weights.device).view(1, 1, *sizes)
    # footprint of the position index itself = which position window k of query i reads
    sources = footprint(positions, kernel_size, dilation)[0, 0].round().long()  # (K, N)
    if sources.shape != (K, N):
        raise InputError(
            f"weights {tuple(weights.shape)} do not fit sizes {sizes} with kernel_size {kernel_size}"
        )
    out = weights.new_zeros(B, A, N)
    return out.scatter_add_(2, sources.flatten()[None, None].expand(B, A, -1), weights.flatten(2))
