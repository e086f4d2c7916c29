"""Mean attention distance per head and layer (Dosovitskiy et al. 2021, arXiv:2010.11929, Fig. 7).

For a query patch q and key patch k on the patch grid, d(q, k) is the Euclidean distance between
the two patches' positions in pixels (grid steps times the patch size). A head's attention
distance for one image is ``mean over query patches q of sum over key patches k of A(q, k) d(q, k)``;
:func:`layer_attention_distances` averages it over the images of a batch. It is the "receptive
field size" of a head: small for local heads, about a third of the image side for uniform ones.
Seed 004 (the distillation thesis) uses it in its Figure 1 to show that a contrastive teacher (DINO)
attends globally in late layers where a masked-image-modelling one (MAE) stays local.

Prefix tokens (CLS, a distillation token): excluded as queries and as keys, and the patch rows are
**not** renormalised, as the analyses this metric is quoted from do (the mean-attention-distance
code of Park et al. 2023, ``naver-ai/cl-vs-mim``, and the ViT-representations notebooks it
follows slice ``attn[..., 1:, 1:]`` and sum). The weight a patch query gives to CLS therefore
counts as distance 0: a head that mostly attends to CLS reads as local. ``renormalize=True``
divides each patch row by its patch mass instead, which measures only where among the patches
a head looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from attnlab.errors import InputError

Grid = tuple[int, int]


def _pair(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    if ph <= 0 or pw <= 0:
        raise InputError(f"patch_size must be positive, got {patch_size}")
    return ph, pw


def patch_distances(
    grid: Grid, patch_size: int | tuple[int, int], *, device: torch.device | None = None
) -> torch.Tensor:
    """(h*w, h*w) float64 distances in pixels between patch positions, row-major like the tokens."""
    h, w = grid
    if h <= 0 or w <= 0:
        raise InputError(f"grid must be two positive sizes (h, w), got {grid}")
    ph, pw = _pair(patch_size)
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64, device=device),
        torch.arange(w, dtype=torch.float64, device=device),
        indexing="ij",
    )
    ys = (rows * ph).flatten()  # (h*w,) patch positions in pixels, token order
    xs = (cols * pw).flatten()
    return torch.hypot(ys[:, None] - ys[None, :], xs[:, None] - xs[None, :])  # (h*w, h*w)


def attention_distance(
    attn: torch.Tensor,
    grid: Grid,
    patch_size: int | tuple[int, int],
    *,
    num_prefix_tokens: int = 0,
    renormalize: bool = False,
) -> torch.Tensor:
    """(B, H) mean attention distance in pixels of each image and head, from (B, H, N, N) weights.

    N = ``num_prefix_tokens`` + h*w with the prefix tokens first (see the module docstring)."""
    if attn.dim() != 4 or attn.shape[-1] != attn.shape[-2]:
        raise InputError(f"attention must be self-attention weights (B, H, N, N), got {tuple(attn.shape)}")
    h, w = grid
    if num_prefix_tokens < 0:
        raise InputError(f"num_prefix_tokens must be >= 0, got {num_prefix_tokens}")
    if attn.shape[-1] != num_prefix_tokens + h * w:
        raise InputError(
            f"attention has {attn.shape[-1]} tokens but a {h}x{w} grid with {num_prefix_tokens} prefix "
            f"token(s) has {num_prefix_tokens + h * w}; check grid and num_prefix_tokens"
        )
    patches = attn.detach()[..., num_prefix_tokens:, num_prefix_tokens:].double()  # (B, H, h*w, h*w)
    if renormalize:
        patches = patches / patches.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    dist = patch_distances(grid, patch_size, device=attn.device)  # (h*w, h*w)
    per_query = (patches * dist).sum(-1)  # (B, H, h*w) expected distance of each query patch
    return per_query.mean(-1)  # (B, H)


def layer_attention_distances(
    record: Mapping[str, torch.Tensor],
    grid: Grid,
    patch_size: int | tuple[int, int],
    *,
    num_prefix_tokens: int = 0,
    renormalize: bool = False,
    layers: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Each layer's (H,) mean attention distance over the batch, in the record's layer order.

    ``record`` is what ``attnlab.explain.capture(model)`` yields (or any mapping of layer name to
    (B, H, N, N) weights); ``layers`` picks some of them, e.g. to leave out a cross-attention."""
    names = list(record) if layers is None else list(layers)
    if not names:
        raise InputError("the attention record is empty: run the model inside the capture block")
    out: dict[str, torch.Tensor] = {}
    for name in names:
        try:
            out[name] = attention_distance(
                record[name],
                grid,
                patch_size,
                num_prefix_tokens=num_prefix_tokens,
                renormalize=renormalize,
            ).mean(0)
        except InputError as err:
            raise InputError(f"layer '{name}': {err}") from None
    return out


def attention_distance_figure(
    series: Mapping[str, Mapping[str, torch.Tensor]], *, title: str | None = None
) -> Figure:
    """Distance against depth, one colour per model: each head a dot, the mean over heads a line.

    ``series`` maps a model's label to its :func:`layer_attention_distances` (layers in depth
    order), as in Dosovitskiy et al.'s Fig. 7 and the seed's Figure 1 (CL red, MIM blue)."""
    if not series or any(not layers for layers in series.values()):
        raise InputError("attention_distance_figure needs at least one model with at least one layer")
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, layers) in enumerate(series.items()):
        color = colors[i % len(colors)]
        depth = range(1, len(layers) + 1)
        for d, heads in zip(depth, layers.values(), strict=True):
            values = heads.detach().double().cpu().flatten()
            ax.scatter([d] * len(values), values.tolist(), s=12, color=color, alpha=0.6)
        means = [float(heads.detach().double().mean()) for heads in layers.values()]
        ax.plot(list(depth), means, color=color, label=label)
    ax.set_xlabel("layer (depth)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.legend(fontsize=8)
    if title is not None:
        ax.set_title(title, fontsize=9)
    return fig


def plot_attention_distance(
    series: Mapping[str, Mapping[str, torch.Tensor]], path: Path, *, title: str | None = None
) -> Path:
    """Save :func:`attention_distance_figure` to ``path`` (parents created)."""
    fig = attention_distance_figure(series, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
