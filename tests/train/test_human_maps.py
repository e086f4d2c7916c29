"""Human-in-the-loop ABN: export maps, edit them, fine-tune on them (attnlab abn-maps)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from attnlab.cli import main
from attnlab.data.edited_maps import EditedMaps, map_file_name
from attnlab.data.fashion_mnist import DEFAULT_ROOT
from attnlab.errors import InputError
from attnlab.models import create_model
from attnlab.runs.config import OptimConfig
from attnlab.runs.weights import load_initial_weights
from attnlab.train.attention_branch import AttentionBranchTask
from attnlab.train.human_maps import foreground
from attnlab.train.model_options import to_channels_last
from tests.train.test_recipes import SMOKE

pytestmark = pytest.mark.skipif(
    not Path(DEFAULT_ROOT).is_dir(), reason=f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs it)"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("abn") / "run"
    assert main(["run", "abn-fashion_mnist", "--run-dir", str(run), *SMOKE]) == 0
    return run


def _export(trained: Path, out: Path, count: int = 6) -> None:
    assert main(["abn-maps", "export", str(trained), "--out", str(out), "--count", str(count)]) == 0


def test_export_writes_maps_at_image_size_and_the_exact_inputs(trained: Path, tmp_path: Path):
    out = tmp_path / "maps"
    _export(trained, out)
    maps = sorted((out / "maps").glob("*.png"))
    assert [m.name for m in maps] == [map_file_name(i) for i in range(6)]
    assert np.asarray(Image.open(maps[0])).shape == (28, 28)
    examples = load_file(out / "examples.safetensors")
    assert examples["inputs"].shape == (6, 1, 28, 28) and examples["indices"].tolist() == list(range(6))
    # the model's own map, upsampled: a constant map would mean the export wrote nothing real
    assert np.asarray(Image.open(maps[0])).std() > 0
    dataset = EditedMaps(out)
    assert len(dataset) == 6 and dataset[0]["attention"].shape == (1, 28, 28)


def test_finetune_starts_from_the_trained_weights_and_adds_the_map_term(trained: Path, tmp_path: Path):
    out = tmp_path / "maps"
    _export(trained, out, count=4)
    for name in (map_file_name(2), map_file_name(3)):  # a person removes two examples
        (out / "maps" / name).unlink()
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(out / "maps" / map_file_name(0))  # attend all
    new = tmp_path / "finetuned"
    args = ["abn-maps", "finetune", str(trained), "--maps", str(out), "--steps", "2", "--run-dir", str(new)]
    assert main([*args, "--trainer.progress_bar", "false", "--trainer.limit_test_batches", "1"]) == 0
    config = yaml.safe_load((new / "config.yaml").read_text())
    assert config["trainer"]["init_from"] == str(trained.resolve())
    assert config["data"]["name"] == "edited-maps" and config["data"]["batch_size"] == 2
    assert config["optim"]["lr"] == pytest.approx(0.1 * 0.1)
    assert json.loads((new / "metrics.json").read_text())["test/acc"] >= 0


def test_map_term_is_lambda_times_the_l2_distance_at_the_maps_resolution():
    torch.manual_seed(0)
    model = create_model("abn-resnet20-cifar", in_chans=1, num_classes=10).eval()
    task = AttentionBranchTask(model=model, optim=OptimConfig(), map_weight=0.5)
    images, edited = torch.randn(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    terms = task.loss_terms({"input": images, "label": torch.tensor([1, 2]), "attention": edited})
    m = model(images).attention  # (2, 1, 14, 14)
    target = edited.reshape(2, 1, 14, 2, 14, 2).mean(dim=(3, 5))  # 2x2 block means
    expected = 0.5 * (m - target).flatten(1).norm(dim=1).mean()
    assert torch.allclose(terms["map"], expected, atol=1e-6)
    assert set(task.loss_terms({"input": images, "label": torch.tensor([1, 2])})) == {"att", "per"}


def test_wrong_sized_and_unknown_map_files_are_one_line_errors(trained: Path, tmp_path: Path):
    out = tmp_path / "maps"
    _export(trained, out, count=2)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(out / "maps" / map_file_name(1))
    with pytest.raises(InputError, match="30x30 pixels but its image is 28x28"):
        EditedMaps(out)
    (out / "maps" / map_file_name(1)).unlink()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(out / "maps" / "edited.png")
    with pytest.raises(InputError, match=r"edited\.png .* match no exported example"):
        EditedMaps(out)
    with pytest.raises(InputError, match="not an exported maps folder"):
        EditedMaps(tmp_path)


def test_export_refuses_a_non_empty_folder(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["abn-maps", "export", str(trained), "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_foreground_marks_pixels_unlike_the_border():
    image = torch.zeros(1, 1, 8, 8)
    image[..., 2:5, 3:6] = 1.0
    image[..., 6, 6] = 0.05  # below 10% of the range: background
    expected = torch.zeros(1, 1, 8, 8)
    expected[..., 2:5, 3:6] = 1.0
    assert torch.equal(foreground(image), expected)


def test_init_from_loads_every_weight_and_rejects_a_different_model(trained: Path):
    model = create_model("abn-resnet20-cifar", in_chans=1, num_classes=10)
    load_initial_weights(model, trained)
    saved = load_file(trained / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    with pytest.raises(InputError, match="does not fit the model"):
        load_initial_weights(create_model("abn-resnet20-cifar", in_chans=1, num_classes=7), trained)
    with pytest.raises(InputError, match="no weights at"):
        load_initial_weights(model, trained / "nowhere")


def test_channels_last_keeps_outputs_and_converts_conv_weights():
    torch.manual_seed(0)
    model = create_model("abn-resnet20-cifar", in_chans=1, num_classes=10).eval()
    images = torch.randn(2, 1, 28, 28)
    before = model(images).logits
    to_channels_last(model)
    assert model.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(model(images).logits, before, atol=1e-5)
    video = create_model("r3d-tiny")
    to_channels_last(video)
    conv = next(m for m in video.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
