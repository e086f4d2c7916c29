"""``attnlab segment``: boxes and images read as documented, bad input in one line, and what it
writes equals iterative inference run directly on the run's model."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from attnlab.cli import main
from attnlab.commands.segment import load_sam, parse_boxes, read_image, segment
from attnlab.data.em_cells import cell_image, generate_em_image
from attnlab.errors import InputError
from attnlab.models.sam.boxes import jitter_boxes
from attnlab.models.sam.iterative import IterativeConfig, iterative_inference


@pytest.fixture(scope="module")
def sam_run(tmp_path_factory):
    """A finished prompt-tuning run (2 steps, a fresh preset base): a tuning run's inner SAM is what runs."""
    run = tmp_path_factory.mktemp("segment") / "pt"
    smoke = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.limit_val_batches", "1"]
    smoke += ["--trainer.limit_test_batches", "1", "--trainer.progress_bar", "false", "--data.size", "64"]
    smoke += ["--data.batch_size", "2", "--data.eval_batch_size", "2", "--model.base", "sam-cells"]
    assert main(["run", "sam_prompt_tuning-cells", "--run-dir", str(run), *smoke]) == 0
    return run


def test_boxes_from_a_file_with_comments_and_inline(tmp_path):
    path = tmp_path / "boxes.txt"
    path.write_text("# x0 y0 x1 y1\n1 2 10 12\n\n3.5,4, 20 ,30  # a cell\n")
    assert parse_boxes(str(path)).tolist() == [[1, 2, 10, 12], [3.5, 4, 20, 30]]
    assert parse_boxes("1 2 3 4; 5,6,7,8e0").tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1 2 3\n", r"boxes.txt:1: 3 numbers, a box has 4"),
        ("1 2 3 4\n1 2 x 4\n", r"boxes.txt:2: '1 2 x 4' is not four numbers"),
        ("# nothing\n\n", r"boxes.txt: no boxes"),
    ],
)
def test_bad_box_files_say_where(tmp_path, content, message):
    path = tmp_path / "boxes.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        parse_boxes(str(path))


def test_a_missing_box_file_is_not_read_as_inline_boxes(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        parse_boxes(str(tmp_path / "boxes.txt"))


def test_images_grey_rgb_16_bit_and_tiff(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    iio.imwrite(tmp_path / "grey.png", grey)
    image, boxes = read_image(str(tmp_path / "grey.png"))
    assert boxes is None and image.shape == (3, 3, 4)
    assert torch.equal(image[1], torch.from_numpy(grey).float())  # 8-bit values kept as they are
    rgba = np.stack([grey, grey + 1, grey + 2, np.full_like(grey, 255)], axis=-1)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    assert torch.equal(read_image(str(tmp_path / "rgba.png"))[0][2], torch.from_numpy(grey + 2).float())
    deep = np.array([[1000, 3000], [2000, 5000]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "deep.tif", deep)
    scaled = read_image(str(tmp_path / "deep.tif"))[0][0]
    assert torch.allclose(scaled, torch.tensor([[0.0, 127.5], [63.75, 255.0]]))  # its own range to 0-255


def test_generated_images_come_with_their_cells():
    image, boxes = read_image("em-cells:3")
    grey, instances = generate_em_image(3)
    expected = cell_image(grey, instances, 0)
    assert torch.equal(image, expected.image) and torch.equal(boxes, expected.boxes)
    with pytest.raises(InputError, match="whole number"):
        read_image("em-cells:x")


def test_bad_images(tmp_path):
    (tmp_path / "not.png").write_text("text")
    with pytest.raises(InputError, match="cannot read it"):
        read_image(str(tmp_path / "not.png"))
    with pytest.raises(InputError, match="file not found"):
        read_image(str(tmp_path / "missing.png"))
    iio.imwrite(tmp_path / "line.png", np.zeros((1, 5), dtype=np.uint8))
    with pytest.raises(InputError, match="is not a grey or RGB image"):
        read_image(str(tmp_path / "line.png"))


def test_written_masks_equal_iterative_inference_on_the_runs_model(sam_run, tmp_path):
    config = IterativeConfig(threshold=0.05, max_iterations=3)
    done = segment(sam_run, "em-cells:5", None, tmp_path / "out", iterative=config, jitter=0.3, seed=1)
    model = load_sam(sam_run, "vit_b").eval()
    image, cells = read_image("em-cells:5")
    prompts = jitter_boxes(cells, 0.3, image.shape[1:], torch.Generator().manual_seed(1))
    direct = iterative_inference(model, image, prompts, config)
    saved = np.load(done.arrays)
    assert np.array_equal(saved["masks"], direct.masks.numpy())
    assert np.array_equal(saved["boxes"], direct.boxes.numpy())
    assert done.iterations == direct.iterations.tolist()
    labels = iio.imread(done.labels)
    assert labels.dtype == np.uint16 and labels.shape == tuple(image.shape[1:])
    last = len(cells) - np.argmax(saved["masks"][::-1], axis=0)  # the last box covering each pixel
    assert np.array_equal(labels, np.where(saved["masks"].any(axis=0), last, 0))
    summary = json.loads(done.summary.read_text())
    assert summary["boxes"][0]["box"] == prompts[0].tolist() and summary["max_iterations"] == 3
    assert iio.imread(done.figure).ndim == 3


def test_the_command_and_its_one_line_errors(sam_run, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(["segment", str(sam_run), "em-cells:2", "--boxes", "2 2 30 30; 10 10 40 50", "--out", str(out)])
        == 0
    )
    assert "2 boxes; decoder passes per box" in capsys.readouterr().out
    assert (out / "masks.png").is_file() and (out / "iterations.png").is_file()
    cases = [
        (["em-cells:2", "--boxes", "2 2 300 30"], "--boxes[0] = [2.0, 2.0, 300.0, 30.0] lies outside"),
        (["em-cells:2", "--boxes", "5 5 5 9"], "has zero area"),
        ([str(tmp_path / "none.png"), "--boxes", "1 1 4 4"], "file not found"),
    ]
    for args, message in cases:
        assert main(["segment", str(sam_run), *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["segment", str(tmp_path / "nothing"), "em-cells:2", "--out", str(out)]) == 2
    assert "no SAM at" in capsys.readouterr().err
