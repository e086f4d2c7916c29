"""The residual box encoding of SECOND (arXiv:1811.10092) that PointPillars uses (section 3).

With an anchor ``a`` and a box ``g`` (LiDAR ``x y z w l h ry``, ``z`` the bottom face, encoded
about the vertical centres ``z + h / 2``) and ``d = sqrt(w_a^2 + l_a^2)``::

    dx = (x_g - x_a) / d    dy = (y_g - y_a) / d    dz = (zc_g - zc_a) / h_a
    dw = log(w_g / w_a)     dl = log(l_g / l_a)     dh = log(h_g / h_a)     dr = ry_g - ry_a

``decode`` inverts it exactly. The heading's direction (which of two opposite headings) is the
direction classifier's: :func:`direction_target` gives its bin and :func:`apply_direction` puts a
decoded heading in ``[0, pi)`` plus ``pi`` times the bin (zhulf0804/PointPillars
``bbox2deltas`` / ``anchors2bboxes`` and OpenPCDet's ``dir_offset = 0`` form).
"""

from __future__ import annotations

import math

import torch


def limit_period(angle: torch.Tensor, offset: float, period: float) -> torch.Tensor:
    """``angle`` moved by whole periods into ``[-offset * period, (1 - offset) * period)``."""
    return angle - torch.floor(angle / period + offset) * period


def encode(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(..., 7) boxes relative to (..., 7) anchors -> (..., 7) residuals."""
    xa, ya, za, wa, la, ha, ra = anchors.unbind(-1)
    xg, yg, zg, wg, lg, hg, rg = boxes.unbind(-1)
    diag = torch.sqrt(wa**2 + la**2)
    return torch.stack(
        [
            (xg - xa) / diag,
            (yg - ya) / diag,
            ((zg + hg / 2) - (za + ha / 2)) / ha,
            torch.log(wg / wa),
            torch.log(lg / la),
            torch.log(hg / ha),
            rg - ra,
        ],
        -1,
    )


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(..., 7) residuals on (..., 7) anchors -> (..., 7) boxes (``z`` the bottom face)."""
    xa, ya, za, wa, la, ha, ra = anchors.unbind(-1)
    dx, dy, dz, dw, dl, dh, dr = deltas.unbind(-1)
    diag = torch.sqrt(wa**2 + la**2)
    h = ha * torch.exp(dh)
    zc = dz * ha + za + ha / 2
    return torch.stack(
        [dx * diag + xa, dy * diag + ya, zc - h / 2, wa * torch.exp(dw), la * torch.exp(dl), h, dr + ra], -1
    )


def direction_target(heading: torch.Tensor) -> torch.Tensor:
    """The direction bin of a heading: 0 for ``[0, pi)``, 1 for ``[pi, 2 pi)`` (mod 2 pi)."""
    return (limit_period(heading, 0.0, 2 * math.pi) >= math.pi).long()


def apply_direction(heading: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """A heading moved to ``[0, pi)`` plus ``pi`` times its predicted direction bin."""
    return limit_period(heading, 0.0, math.pi) + math.pi * direction.to(heading.dtype)
