"""Residual Attention Network's attention module (Wang et al., CVPR 2017, arXiv:1704.06904).

One module of an Attention-56/92 stage:

    x  -> p pre-processing units
       -> trunk T(x): t units
       -> soft mask M(x) in [0, 1]: ``depth`` times (max-pool, r units; the deepest
          level has 2r), a skip unit on every bottom-up level but the deepest, then back
          up: bilinear upsample + skip, r units; a last upsample to the input size;
          BN-ReLU-1x1 conv-BN-ReLU-1x1 conv-sigmoid
       -> H = (1 + M) * T           (attention residual learning, Eq. 3)
       -> p post-processing units

Every unit is a pre-activation bottleneck (:class:`PreActBottleneck`). Reference
implementation: fwang91/residual-attention-network (Caffe, Attention-56 prototxt),
which this follows where the paper's figure is vague: the mask branch starts from
the pre-processing output, a skip joins the top-down path by addition with the
upsampled map only, pooling is 3x3 stride 2 without padding and with ceil rounding
(Caffe's), upsampling is bilinear with aligned corners (Caffe's Interp), and the
mask's 1x1 convs have no bias. The paper's stage 1/2/3 of Attention-56 use
``depth`` 3/2/1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck unit (He et al., ECCV 2016, arXiv:1603.05027).

    (B, C_in, H, W) -> (B, C_out, H', W'):
    ``y = s(x) + conv1x1(a(conv3x3(a(conv1x1(a(x))))))`` with ``a = act . norm`` and
    widths C_in -> C_out/4 -> C_out/4 -> C_out. The shortcut s is the identity, or a
    1x1 (strided) projection of the pre-activated input when width or stride change.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        stride: int = 1,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise InputError(
                "PreActBottleneck needs channels and stride >= 1, "
                f"got {in_channels}, {out_channels}, {stride}"
            )
        mid = max(1, out_channels // 4)
        self.norm1, self.act1 = norm_layer(in_channels), act_layer()
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2, self.act2 = norm_layer(mid), act_layer()
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.norm3, self.act3 = norm_layer(mid), act_layer()
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        needs_proj = stride != 1 or in_channels != out_channels
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if needs_proj else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.norm1(x))
        out: torch.Tensor = self.conv1(pre)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.act3(self.norm3(out)))
        return out + (x if self.shortcut is None else self.shortcut(pre))


def _pooled_size(size: int) -> int:
    """Output size of the 3x3 stride-2 ceil-mode max pool (Caffe's), for size >= 2."""
    return math.ceil((size - 3) / 2) + 1


def _upsample(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class ResidualAttentionModule(RecordsAttention):
    """Attention module on (B, channels, H, W); returns (B, channels, H, W).

    ``p``, ``t``, ``r`` are the paper's hyperparameters: units before the trunk/mask
    split and after the fusion (p), trunk units (t), and units between adjacent
    pooling layers in the mask branch (r). ``depth`` is the number of max-pool levels
    of the mask branch; H and W must stay >= 2 before each pool.

    Records the soft mask M as (B, channels, H, W), values in [0, 1].
    """

    def __init__(
        self,
        channels: int,
        *,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        depth: int = 2,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if channels < 1 or depth < 1 or min(p, t, r) < 0:
            raise InputError(
                f"need channels, depth >= 1 and p, t, r >= 0, got {channels}, {depth}, {p}, {t}, {r}"
            )
        self.channels = channels
        self.depth = depth

        def units(n: int) -> nn.Sequential:
            return nn.Sequential(
                *(PreActBottleneck(channels, norm_layer=norm_layer, act_layer=act_layer) for _ in range(n))
            )

        self.pre, self.trunk, self.post = units(p), units(t), units(p)
        self.down = nn.ModuleList(units(2 * r if level == depth - 1 else r) for level in range(depth))
        self.skip = nn.ModuleList(units(1) for _ in range(depth - 1))
        self.up = nn.ModuleList(units(r) for _ in range(depth - 1))
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.mask_head = nn.Sequential(
            norm_layer(channels),
            act_layer(),
            nn.Conv2d(channels, channels, 1, bias=False),
            norm_layer(channels),
            act_layer(),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels or not x.is_floating_point():
            raise InputError(f"x must be floating (B, {self.channels}, H, W), got {x.dtype} {tuple(x.shape)}")
        size = min(x.shape[-2:])
        for _ in range(self.depth):
            if size < 2:
                raise InputError(
                    f"input {x.shape[-2]}x{x.shape[-1]} is too small for a mask branch of depth={self.depth} "
                    "(each level max-pools by 2 and needs at least 2x2)"
                )
            size = _pooled_size(size)

    def soft_mask(self, x: torch.Tensor) -> torch.Tensor:
        """The mask branch M(x): (B, C, H, W) -> (B, C, H, W) in [0, 1]."""
        levels: list[torch.Tensor] = []
        h = x
        for down in self.down:
            h = down(self.pool(h))  # (B, C, H / 2^l, W / 2^l), rounded up
            levels.append(h)
        for level in reversed(range(self.depth - 1)):
            skip = self.skip[level](levels[level])
            h = self.up[level](skip + _upsample(h, skip.shape[-2:]))
        mask: torch.Tensor = self.mask_head(_upsample(h, x.shape[-2:]))  # (B, C, H, W)
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        x = self.pre(x)
        trunk = self.trunk(x)  # (B, C, H, W)
        mask = self.soft_mask(x)  # (B, C, H, W)
        self._record(mask)
        out: torch.Tensor = self.post(trunk + mask * trunk)  # (1 + M) * T: the reference's PROD, SUM
        return out
