"""Classification of signals with sliding windows: the classification task plus pictures of
where a 1D-SAN's attention falls along the signal, one example per class.

Per self-attention block, the attention a step receives (:func:`attnlab.layers.pairwise.
attention_received`: the footprint weights that read it, summed over queries, mean over the
attention channels; 1 = what a uniform footprint gives) is averaged over the windows that cover
the step. For FFT-input models the axis is frequency and the average is over all windows.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from attnlab.explain.capture import capture
from attnlab.models.signals.san1d import SAN1D
from attnlab.models.signals.windows import overlap_mean
from attnlab.train.classification import ClassificationTask
from attnlab.train.registry import register_task


def class_examples(data: torch.utils.data.Dataset, num_classes: int) -> dict[int, torch.Tensor]:
    """The first (C, L) signal of each class in ``data``."""
    found: dict[int, torch.Tensor] = {}
    for i in range(len(data)):  # type: ignore[arg-type]
        sample = data[i]
        found.setdefault(int(sample["label"]), sample["input"])
        if len(found) == num_classes:
            break
    return found


def attention_along(model: SAN1D, signal: torch.Tensor) -> torch.Tensor:
    """(C, L) signal -> (blocks, L) received attention per step (or (blocks, bins) with FFT input)."""
    with torch.no_grad(), capture(model) as rec:
        model(signal[None])
    received = model.attention_over_input([rec[name] for name in rec], batch_size=1)[0]  # (blocks, n, T)
    if model.fft:
        return received.mean(dim=1)  # (blocks, bins)
    return overlap_mean(received, signal.shape[1], model.window, model.stride)  # (blocks, L)


def plot_signal_attention(
    examples: dict[int, torch.Tensor], maps: dict[int, torch.Tensor], names: list[str], fft: bool, path: Path
) -> Path:
    """One column per class: the signal's channels (with FFT input: the windows' mean FFT magnitude,
    as given) above a heat strip per block."""
    classes = sorted(examples)
    blocks = next(iter(maps.values())).shape[0]
    fig, axes = plt.subplots(
        2,
        len(classes),
        figsize=(3.4 * len(classes), 4.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.4]},
    )
    vmax = max(float(m.nan_to_num(0).max()) for m in maps.values())
    for col, c in enumerate(classes):
        top, bottom = axes[0, col], axes[1, col]
        signal = examples[c]
        for channel in signal:
            top.plot(channel.numpy(), lw=0.8)
        top.set_title(names[c] if c < len(names) else f"class {c}")
        top.set_xlim(0, signal.shape[1] - 1)
        top.set_xticks([])
        image = bottom.imshow(
            maps[c].numpy(),
            aspect="auto",
            cmap="magma",
            vmin=0,
            vmax=vmax,
            interpolation="nearest",
            extent=(-0.5, maps[c].shape[1] - 0.5, blocks - 0.5, -0.5),
        )
        bottom.set_yticks(
            range(blocks), [f"SAB {b + 1}" for b in range(blocks)] if col == 0 else [""] * blocks
        )
        bottom.set_xlabel("frequency bin" if fft else "time step")
    fig.colorbar(image, ax=axes[1, :].tolist(), label="attention received (1 = uniform)", shrink=0.9)
    top_label = "mean |FFT| per channel" if fft else "standardised channels"
    axes[0, 0].set_ylabel(top_label)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


@register_task("signal-classification")
class SignalClassificationTask(ClassificationTask):
    """Classification of (B, C, L) signals; the report adds the attention along one signal per class."""

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        figures = super().report_figures(datamodule, out_dir)
        model = self.model
        if not isinstance(model, SAN1D):
            return figures
        model.eval()
        examples = {
            c: s.to(self.device)
            for c, s in class_examples(datamodule.dataset("test"), model.config.num_classes).items()
        }
        maps = {c: attention_along(model, s).cpu() for c, s in examples.items()}
        names = list(getattr(datamodule, "class_names", ()))
        if model.fft:  # what the model reads: the mean FFT magnitude of the windows, (C, bins)
            examples = {c: model.to_windows(s[None]).mean(dim=0) for c, s in examples.items()}
        path = plot_signal_attention(
            {c: s.cpu() for c, s in examples.items()},
            maps,
            names,
            model.fft,
            out_dir / "signal_attention.png",
        )
        axis = "frequency bin" if model.fft else "time step (mean over the windows that cover it)"
        return figures | {f"Attention each {axis} receives per 1D-SAB, first test signal of each class": path}
