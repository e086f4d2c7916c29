"""Report figures (matplotlib, headless).

Every heat map carries a colour bar, every row of a grid says what it shows, and
examples are titled with class names where the datamodule has them
(``class_names``). The ``*_figure`` functions return the matplotlib figure (for
tests to inspect); ``plot_*`` save it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from attnlab.explain.render import to_display, upsample_maps

MAP_CMAP = "jet"  # the heat maps' colours, over the inputs at alpha 0.5


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(series: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """One panel per scalar tag: value against step."""
    names = sorted(series)
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        steps, values = zip(*series[name], strict=True)
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def confusion_counts(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    counts.index_put_(
        (labels.long(), preds.long()), torch.ones_like(labels, dtype=torch.long), accumulate=True
    )
    return counts


def plot_confusion(
    labels: torch.Tensor, preds: torch.Tensor, path: Path, class_names: Sequence[str] | None = None
) -> Path:
    """The test confusion matrix; colour = share of the true class, the counts written in the
    cells when there are at most 20 classes, the class names on the axes when given."""
    n = max(int(max(labels.max(), preds.max())) + 1, len(class_names or ()))
    counts = confusion_counts(labels, preds, n)
    share = counts / counts.sum(1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2, 0.45 * n + 1.5))
    im = ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    if n <= 20:
        for i, row in enumerate(counts.tolist()):
            for j, count in enumerate(row):
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    if class_names:
        ax.set_xticks(range(n), list(class_names), rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), list(class_names), fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


def attention_rows_figure(rows: dict[str, torch.Tensor], evidence: torch.Tensor | None) -> Figure:
    """One heat map per layer: samples x key positions, with its colour bar; crosses mark the evidence."""
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(9, 1.6 + 0.35 * next(iter(rows.values())).shape[0] * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    for ax, (name, weights) in zip(axes[:, 0], rows.items(), strict=True):
        image = ax.imshow(weights.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="weight")
        if evidence is not None:
            ax.scatter(evidence.numpy(), range(len(evidence)), marker="x", color="red", s=30)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("sample", fontsize=8)
    axes[-1, 0].set_xlabel("key position (0 = [CLS])", fontsize=8)
    return fig


def plot_attention_rows(rows: dict[str, torch.Tensor], evidence: torch.Tensor | None, path: Path) -> Path:
    return _save(attention_rows_figure(rows, evidence), path)


def class_titles(
    labels: torch.Tensor | None, preds: torch.Tensor | None, class_names: Sequence[str] | None
) -> list[str]:
    """'true Coat' / 'pred Shirt' per example; class numbers where there are no names."""

    def name(index: int) -> str:
        return class_names[index] if class_names and 0 <= index < len(class_names) else f"class {index}"

    parts = [(labels, "true"), (preds, "pred")]
    count = max((len(t) for t, _ in parts if t is not None), default=0)
    return [
        "\n".join(f"{word} {name(int(t[i]))}" for t, word in parts if t is not None) for i in range(count)
    ]


def _map_range(maps: torch.Tensor) -> tuple[float, float]:
    """[0, 1] for maps inside it (ABN's sigmoid M: comparable across examples), else their range."""
    low, high = float(maps.min()), float(maps.max())
    return (0.0, 1.0) if low >= 0.0 and high <= 1.0 else (low, high if high > low else low + 1.0)


def _bare(axes: Sequence[Axes]) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def attention_maps_figure(
    images: torch.Tensor, maps: dict[str, torch.Tensor], *, titles: Sequence[str] | None = None
) -> Figure:
    """One column per image; rows "input", then per map "attention map M" and "M over input".

    ``images`` (N, 1|3, H, W); ``maps`` name -> (N, 1, h, w) or (N, h, w). Both rows of a map
    share one colour scale and its colour bar. With several maps the rows name their layer."""
    shown = to_display(images)  # (N, H, W, 3)
    n, size = shown.shape[0], (shown.shape[1], shown.shape[2])
    fig, axes = plt.subplots(
        1 + 2 * len(maps),
        n,
        figsize=(1.5 * n + 1.2, 1.5 * (1 + 2 * len(maps))),
        squeeze=False,
        layout="constrained",
    )
    for j in range(n):
        axes[0, j].imshow(shown[j].numpy())
        if titles:
            axes[0, j].set_title(titles[j], fontsize=7)
    axes[0, 0].set_ylabel("input", fontsize=8)
    for k, (name, m) in enumerate(maps.items()):
        raw = m[:, 0] if m.dim() == 4 else m  # (N, h, w)
        raw = raw.detach().float().cpu()
        vmin, vmax = _map_range(raw)
        up = upsample_maps(raw, size)
        suffix = f"\n({name})" if len(maps) > 1 else ""
        row_m, row_over = axes[1 + 2 * k], axes[2 + 2 * k]
        for j in range(n):
            image = row_m[j].imshow(raw[j].numpy(), cmap=MAP_CMAP, vmin=vmin, vmax=vmax)
            row_over[j].imshow(shown[j].numpy())
            row_over[j].imshow(up[j].numpy(), cmap=MAP_CMAP, alpha=0.5, vmin=vmin, vmax=vmax)
        row_m[0].set_ylabel("attention map M" + suffix, fontsize=8)
        row_over[0].set_ylabel("M over input" + suffix, fontsize=8)
        beside = list(axes.flat) if len(maps) == 1 else [*row_m, *row_over]  # one map: columns aligned
        fig.colorbar(image, ax=beside, fraction=0.03, pad=0.01, label="M")
    _bare(list(axes.flat))
    return fig


def plot_attention_maps(
    images: torch.Tensor, maps: dict[str, torch.Tensor], path: Path, *, titles: Sequence[str] | None = None
) -> Path:
    return _save(attention_maps_figure(images, maps, titles=titles), path)


def overlays_figure(
    images: torch.Tensor,
    maps: dict[str, torch.Tensor],
    *,
    titles: Sequence[str] | None = None,
    label: str = "map, min-max scaled per example",
) -> Figure:
    """One column per image; rows "input", then each named (N, h, w) map in [0, 1] over it; one colour bar."""
    shown = to_display(images)  # (N, H, W, 3)
    n, size = shown.shape[0], (shown.shape[1], shown.shape[2])
    fig, axes = plt.subplots(
        1 + len(maps), n, figsize=(1.6 * n + 1.2, 1.6 * (1 + len(maps))), squeeze=False, layout="constrained"
    )
    for j in range(n):
        axes[0, j].imshow(shown[j].numpy())
        if titles:
            axes[0, j].set_title(titles[j], fontsize=7)
    axes[0, 0].set_ylabel("input", fontsize=8)
    for i, (name, m) in enumerate(maps.items(), start=1):
        up = upsample_maps(m.detach().float().cpu(), size)
        for j in range(n):
            axes[i, j].imshow(shown[j].numpy())
            axes[i, j].imshow(up[j].numpy(), cmap=MAP_CMAP, alpha=0.5, vmin=0.0, vmax=1.0)
        axes[i, 0].set_ylabel(f"{name}\nover input", fontsize=8)
    scale = ScalarMappable(Normalize(0.0, 1.0), MAP_CMAP)
    fig.colorbar(scale, ax=list(axes.flat), fraction=0.03, pad=0.01, label=label)
    _bare(list(axes.flat))
    return fig


def plot_overlays(
    images: torch.Tensor, maps: dict[str, torch.Tensor], path: Path, *, titles: Sequence[str] | None = None
) -> Path:
    return _save(overlays_figure(images, maps, titles=titles), path)


def video_attention_figure(
    video: torch.Tensor,
    spatial: torch.Tensor,
    temporal: torch.Tensor | None,
    *,
    titles: Sequence[str] | None = None,
    frames: int = 8,
    name: str = "M_s",
    own_range: bool = False,
) -> Figure:
    """Per clip two rows, "frames" and "<name> over frames" (one colour bar); titles give t and M_t.

    ``video`` (N, C, T, H, W), ``spatial`` (N, T, h, w) or (N, 1, T, h, w), ``temporal`` (N, T).
    ``own_range``: colours span 0 to the maps' maximum, for maps in [0, 1] that are not on ABN's
    sigmoid scale (softmax weights over a clip's tokens, each near 1 / N)."""
    spatial = (spatial[:, 0] if spatial.dim() == 5 else spatial).detach().float().cpu()
    n, _, t, h, w = video.shape
    picks = torch.linspace(0, t - 1, min(frames, t)).round().long()
    shown_maps = spatial[:, picks]
    vmin, vmax = (0.0, max(float(shown_maps.max()), 1e-12)) if own_range else _map_range(shown_maps)
    fig, axes = plt.subplots(
        2 * n, len(picks), figsize=(1.3 * len(picks) + 1.2, 1.4 * 2 * n), squeeze=False, layout="constrained"
    )
    for i in range(n):
        shown = to_display(video[i].transpose(0, 1)[picks])  # (F, H, W, 3)
        maps = upsample_maps(spatial[i, picks], (h, w))  # (F, H, W)
        for j, f in enumerate(picks.tolist()):
            axes[2 * i, j].imshow(shown[j].numpy())
            title = f"t={f}" if temporal is None else f"t={f} M_t={float(temporal[i, f]):.2f}"
            axes[2 * i, j].set_title(title, fontsize=6)
            axes[2 * i + 1, j].imshow(shown[j].numpy())
            axes[2 * i + 1, j].imshow(maps[j].numpy(), cmap=MAP_CMAP, alpha=0.5, vmin=vmin, vmax=vmax)
        clip = "".join(textwrap.fill(line, 24) + "\n" for line in titles[i].splitlines()) if titles else ""
        axes[2 * i, 0].set_ylabel(f"{clip}frames", fontsize=7)
        axes[2 * i + 1, 0].set_ylabel(f"spatial {name}\nover frames", fontsize=7)
    scale = ScalarMappable(Normalize(vmin, vmax), MAP_CMAP)  # opaque: the colours of the maps themselves
    fig.colorbar(scale, ax=list(axes[1::2].flat), fraction=0.03, pad=0.01, label=name)
    _bare(list(axes.flat))
    return fig


def plot_video_attention(
    video: torch.Tensor,
    spatial: torch.Tensor,
    temporal: torch.Tensor | None,
    path: Path,
    *,
    titles: Sequence[str] | None = None,
    name: str = "M_s",
    own_range: bool = False,
) -> Path:
    figure = video_attention_figure(video, spatial, temporal, titles=titles, name=name, own_range=own_range)
    return _save(figure, path)
