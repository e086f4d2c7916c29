"""Attention-augmented convolution (Bello, Zoph, Vaswani, Shlens, Le, ICCV 2019, arXiv:1904.09925).

    AAConv(x) = Concat[Conv(x), MHA(x)]

The convolution gives ``out_dim - dv`` channels; multi-head self-attention over all
positions gives ``dv`` channels after a 1x1 output projection W^O. With ``relative``,
head h's logit between query i = (i_y, i_x) and key j = (j_y, j_x) is (paper, Eq. 3)

    l_ij = q_i^T (k_j + r^W_{j_x - i_x} + r^H_{j_y - i_y}) / sqrt(dkh),

with learned embeddings r^W (2W - 1 offsets) and r^H (2H - 1 offsets) of size
dkh = dk / num_heads. As in the paper's code (Appendix A), the embeddings are shared by
all heads, the 1/sqrt(dkh) scale applies to the relative terms as well, and the
relative logits are computed with the "rel_to_abs" reshaping trick (no L x L x dkh
tensor). The relative embeddings fix the attention map size, hence ``input_size``.

Strided layers: the convolution is strided; the attention runs on the input average-
pooled by ``stride`` x ``stride`` (ceil mode, so both parts give ceil(H / stride) rows).
Our choice: pooling keeps every input pixel's information in the keys and values, which
a strided 1x1 query/key/value convolution would drop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


def rel_to_abs(x: torch.Tensor) -> torch.Tensor:
    """Relative to absolute logits: (..., L, 2L - 1) -> (..., L, L), out[i, j] = x[i, j - i + L - 1].

    Padding one column and L - 1 trailing zeros, then re-reading the flat buffer with row
    length 2L - 1, shifts row i left by i, which lines offset j - i up with column j.
    """
    length = x.shape[-2]
    x = F.pad(x, (0, 1))  # (..., L, 2L)
    flat = F.pad(x.flatten(-2), (0, length - 1))  # (..., (L + 1) * (2L - 1))
    rows = flat.view(*flat.shape[:-1], length + 1, 2 * length - 1)  # (..., L + 1, 2L - 1)
    return rows[..., :length, length - 1 :]  # (..., L, L)


def _softmax_weights(q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T + bias) over keys: (B, Nh, L, d) x (B, Nh, L, d) -> (B, Nh, L, L).

    Half precision is normalised in float32; float64 stays float64 (exact references).
    """
    logits = q @ k.transpose(-2, -1)  # (B, Nh, L, L)
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1, dtype=torch.promote_types(logits.dtype, torch.float32)).to(q.dtype)


def _attention_size(size: int, stride: int) -> int:
    return -(-size // stride)


class AugmentedConv2d(RecordsAttention):
    """Attention-augmented 2D convolution: (B, dim, H, W) -> (B, out_dim, ceil(H/s), ceil(W/s)).

    Channels ``[:out_dim - dv]`` are the convolution, ``[out_dim - dv:]`` the attention.
    ``input_size`` is the (H, W) of the input; it is required with ``relative=True``.
    Records the per-head attention (B, num_heads, h*w, h*w) on the (pooled) attention
    map of h x w = ceil(H/s) x ceil(W/s) positions, flattened row-major; rows sum to 1.
    """

    def __init__(
        self,
        dim: int,
        *,
        out_dim: int,
        dk: int,
        dv: int,
        num_heads: int = 8,
        kernel_size: int = 3,
        stride: int = 1,
        relative: bool = True,
        input_size: tuple[int, int] | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self._check_args(dim, out_dim, dk, dv, num_heads, kernel_size, stride, attn_drop)
        if relative and input_size is None:
            raise InputError("relative=True needs input_size=(H, W) to size the relative embeddings")
        self.dim, self.out_dim, self.dk, self.dv, self.num_heads = dim, out_dim, dk, dv, num_heads
        self.stride, self.relative, self.input_size, self.attn_drop = stride, relative, input_size, attn_drop
        self.conv = None
        if out_dim > dv:
            self.conv = nn.Conv2d(dim, out_dim - dv, kernel_size, stride, kernel_size // 2)
        self.pool: nn.Module = nn.AvgPool2d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.qkv = nn.Conv2d(dim, 2 * dk + dv, 1, bias=qkv_bias)
        self.proj = nn.Conv2d(dv, dv, 1)
        self.rel_h: nn.Parameter | None = None
        self.rel_w: nn.Parameter | None = None
        if relative and input_size is not None:
            dkh = dk // num_heads
            h, w = (_attention_size(n, stride) for n in input_size)
            self.rel_h = nn.Parameter(torch.randn(2 * h - 1, dkh) * dkh**-0.5)
            self.rel_w = nn.Parameter(torch.randn(2 * w - 1, dkh) * dkh**-0.5)

    @staticmethod
    def _check_args(
        dim: int, out_dim: int, dk: int, dv: int, num_heads: int, kernel_size: int, stride: int, drop: float
    ) -> None:
        if num_heads < 1 or dk % num_heads or dv % num_heads or dk < num_heads or dv < num_heads:
            raise InputError(f"dk={dk} and dv={dv} must be positive multiples of num_heads={num_heads}")
        if dim < 1 or not dv <= out_dim:
            raise InputError(f"need dim >= 1 and dv <= out_dim, got dim={dim}, dv={dv}, out_dim={out_dim}")
        if kernel_size < 1 or kernel_size % 2 == 0 or stride < 1:
            raise InputError(f"kernel_size must be odd and stride >= 1, got {kernel_size}, {stride}")
        if not 0.0 <= drop < 1.0:
            raise InputError(f"attn_drop must be in [0, 1), got {drop}")

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.dim or not x.is_floating_point():
            raise InputError(f"x must be floating (B, {self.dim}, H, W), got {x.dtype} {tuple(x.shape)}")
        if self.relative and tuple(x.shape[2:]) != self.input_size:
            raise InputError(
                f"relative embeddings are sized for input {self.input_size}, got {tuple(x.shape[2:])}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        attn = self._attention(self.pool(x))  # (B, dv, h, w)
        if self.conv is None:
            return attn
        return torch.cat([self.conv(x), attn], dim=1)  # (B, out_dim, h, w)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        dkh = self.dk // self.num_heads
        q, k, v = self.qkv(x).split([self.dk, self.dk, self.dv], dim=1)
        # Heads are contiguous channel groups, as split_heads_2d in the paper's code.
        q, k, v = (rearrange(t, "b (n d) h w -> b n (h w) d", n=self.num_heads) for t in (q, k, v))
        q = q * dkh**-0.5  # scaled before the relative terms too (paper, Eq. 3)
        bias = self._relative_logits(q, h, w) if self.relative else None  # (B, Nh, hw, hw)
        drop = self.attn_drop if self.training else 0.0
        if self._recording_differentiable:
            weights = _softmax_weights(q, k, bias)  # (B, Nh, hw, hw)
            self._record(weights)
            out = F.dropout(weights, drop, self.training) @ v  # (B, Nh, hw, dvh)
        else:
            if self._recording:
                self._record(_softmax_weights(q, k, bias))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop, scale=1.0)
        out = rearrange(out, "b n (h w) d -> b (n d) h w", h=h)  # (B, dv, h, w)
        return self.proj(out)

    def _relative_logits(self, q: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """S^rel_H + S^rel_W for scaled queries (B, Nh, hw, dkh) -> (B, Nh, hw, hw)."""
        if self.rel_h is None or self.rel_w is None:
            raise InputError("relative logits need relative embeddings (relative=True)")
        q = q.view(*q.shape[:2], h, w, -1)  # (B, Nh, h, w, dkh)
        rel_w = rel_to_abs(torch.einsum("bnyxd,md->bnyxm", q, self.rel_w))  # (B, Nh, h, w, w)
        rel_h = rel_to_abs(torch.einsum("bnyxd,md->bnxym", q, self.rel_h))  # (B, Nh, w, h, h)
        # Width offsets depend only on key column, height offsets only on key row.
        logits = rel_h.transpose(2, 3)[..., :, None] + rel_w[..., None, :]  # (B, Nh, h, w, h, w)
        return logits.flatten(4).flatten(2, 3)  # (B, Nh, hw, hw)
