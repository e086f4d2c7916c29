"""Report figures: colour bars on heat maps, rows that say what they show, class names, labelled GIFs."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attnlab.data.fashion_mnist import CLASSES, FashionMNISTData
from attnlab.models.abn.resnet_abn import ABNConfig, AttentionBranchNetwork
from attnlab.runs.config import OptimConfig
from attnlab.train import figures
from attnlab.train.attention_branch import AttentionBranchTask
from attnlab.train.figures import (
    attention_maps_figure,
    attention_rows_figure,
    class_titles,
    overlays_figure,
    video_attention_figure,
)
from attnlab.train.object_centric_figures import PANELS, decomposition_frames, slot_colours


def colorbars(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def row_labels(fig: Figure) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel() and ax.get_label() != "<colorbar>"]


def test_fashion_mnist_names_its_classes():
    assert FashionMNISTData.class_names == CLASSES and len(CLASSES) == FashionMNISTData.num_classes
    assert CLASSES[0] == "T-shirt/top" and CLASSES[9] == "Ankle boot"


def test_class_titles_use_names_where_there_are_some():
    assert class_titles(torch.tensor([9, 0]), torch.tensor([9, 6]), CLASSES) == [
        "true Ankle boot\npred Ankle boot",
        "true T-shirt/top\npred Shirt",
    ]
    assert class_titles(torch.tensor([3]), None, None) == ["true class 3"]


def test_attention_maps_rows_say_what_they_are_and_share_a_colour_bar():
    fig = attention_maps_figure(
        torch.rand(3, 1, 12, 12), {"head": torch.rand(3, 1, 3, 3)}, titles=["a", "b", "c"]
    )
    assert row_labels(fig) == ["input", "attention map M", "M over input"]
    (bar,) = colorbars(fig)
    assert bar.get_ylabel() == "M" and bar.get_ylim() == (0.0, 1.0)  # ABN's sigmoid M on its own scale
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    two = attention_maps_figure(
        torch.rand(2, 3, 8, 8), {"a": torch.rand(2, 1, 2, 2), "b": 5 * torch.rand(2, 2, 2)}
    )
    assert len(colorbars(two)) == 2 and "attention map M\n(b)" in row_labels(two)
    assert colorbars(two)[1].get_ylim()[1] > 1  # a map outside [0, 1]: its own range


def test_explanation_overlays_name_each_method_and_share_a_colour_bar():
    maps = {"gradcam": torch.rand(2, 6, 6), "center": torch.rand(2, 6, 6)}
    fig = overlays_figure(torch.rand(2, 1, 6, 6), maps, titles=["true Bag\npred Bag", "x"])
    assert row_labels(fig) == ["input", "gradcam\nover input", "center\nover input"]
    (bar,) = colorbars(fig)
    assert bar.get_ylim() == (0.0, 1.0) and "min-max" in bar.get_ylabel()
    assert fig.axes[0].get_title() == "true Bag\npred Bag"


def test_video_attention_has_a_colour_bar_and_labelled_rows():
    fig = video_attention_figure(
        torch.rand(2, 3, 4, 8, 8), torch.rand(2, 1, 4, 2, 2), torch.rand(2, 4), titles=["true Coat", "x"]
    )
    (bar,) = colorbars(fig)
    assert bar.get_ylabel() == "M_s"
    assert row_labels(fig) == [
        "true Coat\nframes",
        "spatial M_s\nover frames",
        "x\nframes",
        "spatial M_s\nover frames",
    ]


def test_video_attention_on_softmax_weights_spans_their_own_range():
    weights = torch.softmax(torch.randn(2, 4 * 3 * 3), -1).view(2, 4, 3, 3)  # each near 1 / 36
    fig = video_attention_figure(torch.rand(2, 1, 4, 6, 6), weights, None, name="weight", own_range=True)
    (bar,) = colorbars(fig)
    assert bar.get_ylim() == pytest.approx((0.0, float(weights.max())))
    assert bar.get_ylabel() == "weight" and row_labels(fig)[1] == "spatial weight\nover frames"
    default = video_attention_figure(torch.rand(2, 1, 4, 6, 6), weights, None)
    assert colorbars(default)[0].get_ylim() == (0.0, 1.0)  # ABN's sigmoid scale


def test_attention_rows_have_one_colour_bar_per_layer():
    rows = {"blocks.0.attn": torch.rand(4, 6), "blocks.1.attn": torch.rand(4, 6)}
    fig = attention_rows_figure(rows, torch.tensor([1, 2, 3, 4]))
    assert len(colorbars(fig)) == 2 and all(bar.get_ylabel() == "weight" for bar in colorbars(fig))


class NamedTestData:
    """A stand-in datamodule: one test batch and the Fashion-MNIST class names."""

    class_names = CLASSES

    def test_dataloader(self):
        return [{"input": torch.randn(3, 1, 16, 16), "label": torch.tensor([0, 9, 8])}]


def test_abn_report_figure_names_classes_and_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shown: list[Figure] = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: shown.append(fig) or save(fig, path))
    model = AttentionBranchNetwork(ABNConfig(depth=8, in_chans=1, num_classes=10))
    task = AttentionBranchTask(model=model, optim=OptimConfig())
    out = task.report_figures(NamedTestData(), tmp_path)
    (path,) = out.values()
    assert path == tmp_path / "attention.png" and path.is_file()
    (fig,) = shown
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.splitlines()[0] for t in titles] == ["true T-shirt/top", "true Ankle boot", "true Bag"]
    assert all(t.splitlines()[1].removeprefix("pred ") in CLASSES for t in titles)
    assert row_labels(fig) == ["input", "attention map M", "M over input"]  # not the layer name "head"
    assert len(colorbars(fig)) == 1


def clips(n=2, t=3, k=4, size=8):
    torch.manual_seed(0)
    video = torch.rand(n, t, 3, size, size)
    return video, video.flip(-1), torch.rand(n, t, k, size, size).softmax(2)


def test_decomposition_gif_frames_are_labelled(tmp_path: Path):
    video, recon, masks = clips()
    plain = decomposition_frames(video, recon, masks, labels=False)
    labelled = decomposition_frames(video, recon, masks)
    extra = labelled.shape[1] - plain.shape[1]
    assert extra > 0 and labelled.shape[2] == plain.shape[2] and labelled.shape[0] == plain.shape[0]
    header = next(h for h in range(extra) if np.array_equal(labelled[:, h : h + plain.shape[1]], plain))
    assert header > 0  # a strip above the panels ...
    top = labelled[0, :header]
    thirds = np.array_split(np.arange(top.shape[1]), len(PANELS))
    assert all((top[:, cols] < 100).all(-1).any() for cols in thirds)  # ... with dark text over each panel
    legend = labelled[0, header + plain.shape[1] :]
    assert legend.shape[0] > 0  # and one below with each slot's colour swatch
    for colour in (slot_colours(masks.shape[2]) * 255).round().int().tolist():
        assert (np.abs(legend.astype(int) - colour).sum(-1) == 0).any(), colour
    from attnlab.train.object_centric_figures import write_decomposition_gif

    path = write_decomposition_gif(video, recon, masks, tmp_path / "d.gif")
    assert iio.imread(path, index=0).shape[:2] == labelled.shape[1:3]


def test_confusion_counts_rows_are_true_classes():
    labels, preds = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(figures.confusion_counts(labels, preds, 3), expected)
    assert torch.equal(figures.confusion_counts(labels, preds, 4)[:3, :3], expected)


def test_confusion_figure_names_classes_and_writes_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    drawn: list[Figure] = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    labels, preds = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1])
    figures.plot_confusion(labels, preds, tmp_path / "c.png", ["cat", "dog", "eel"])
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "eel"]
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert written == {(i, j): [[1, 1, 0], [0, 1, 0], [0, 1, 0]][i][j] for i in range(3) for j in range(3)}
