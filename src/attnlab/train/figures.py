"""Report figures (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch


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


def plot_confusion(labels: torch.Tensor, preds: torch.Tensor, path: Path) -> Path:
    n = int(max(labels.max(), preds.max())) + 1
    counts = torch.zeros(n, n, dtype=torch.long)
    counts.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    fig, ax = plt.subplots(figsize=(0.45 * n + 2, 0.45 * n + 1.5))
    im = ax.imshow(counts.numpy(), cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_attention_rows(rows: dict[str, torch.Tensor], evidence: torch.Tensor | None, path: Path) -> Path:
    """One heat map per layer: samples x key positions; crosses mark the evidence positions."""
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(9, 1.6 + 0.35 * next(iter(rows.values())).shape[0] * len(rows))
    )
    for ax, (name, weights) in zip([axes] if len(rows) == 1 else axes, rows.items(), strict=True):
        ax.imshow(weights.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        if evidence is not None:
            ax.scatter(evidence.numpy(), range(len(evidence)), marker="x", color="red", s=30)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("sample", fontsize=8)
    ax.set_xlabel("key position (0 = [CLS])", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
