"""Generated EM cells (deterministic, touching cells with dark membranes) and the TIFF loader for
ISBI 2012 / EPFL EM style stacks, on files written here."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.data.em_cells import (
    EMCellsData,
    EMStyle,
    collate_cells,
    connected_components,
    generate_em_image,
    load_tiff_pair,
)
from attnlab.errors import ConfigError, InputError

tifffile = pytest.importorskip("tifffile")


def test_generation_is_a_function_of_the_seed():
    a, la = generate_em_image(5)
    b, lb = generate_em_image(5)
    c, _ = generate_em_image(6)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)
    assert a.dtype == torch.uint8 and a.shape == (128, 128) and la.shape == (128, 128)


def test_cells_touch_across_dark_membranes_and_vary_in_size():
    image, labels = generate_em_image(1)
    ids = [int(i) for i in labels.unique() if i > 0]
    assert len(ids) >= 6
    assert labels.unique().tolist() == list(range(len(ids) + 1))  # 0 and 1..K, no gaps
    areas = torch.tensor([int((labels == i).sum()) for i in ids]).float()
    assert areas.max() > 3 * areas.min()  # varied sizes
    assert areas.min() >= EMStyle().min_area
    membrane = labels == 0
    assert image[membrane].float().mean() < image[~membrane].float().mean() - 40
    # touching: a cell grown by 3 px (across the membrane) reaches another cell
    one = (labels == ids[0]).float()[None, None]
    grown = F.max_pool2d(one, 7, stride=1, padding=3)[0, 0] > 0
    touching = {int(i) for i in labels[grown].unique()} - {0, ids[0]}
    assert touching


def test_connected_components_by_hand():
    fg = torch.tensor(
        [
            [1, 1, 0, 0, 1],
            [0, 1, 0, 1, 1],
            [1, 0, 0, 0, 0],
            [1, 0, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 2],
            [0, 1, 0, 2, 2],
            [3, 0, 0, 0, 0],  # (2, 0) touches (1, 1) only diagonally: 4-connectivity splits them
            [3, 0, 4, 4, 4],
        ]
    )
    assert torch.equal(connected_components(fg), expected)


def test_tiff_pairs_as_isbi_and_as_instance_labels(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 6, 7), dtype=np.uint8)
    membranes = np.full((3, 6, 7), 255, dtype=np.uint8)
    membranes[:, 3, :] = 0  # one horizontal membrane: two cells per slice
    membranes[2, :, 4] = 0  # and in slice 2 a vertical one: four cells
    tifffile.imwrite(tmp_path / "train-volume.tif", images, photometric="minisblack")
    tifffile.imwrite(tmp_path / "train-labels.tif", membranes, photometric="minisblack")
    got_images, instances = load_tiff_pair(tmp_path / "train-volume.tif", tmp_path / "train-labels.tif")
    assert torch.equal(got_images, torch.from_numpy(images))
    assert [int(s.max()) for s in instances] == [2, 2, 4]
    assert (instances[:, 3] == 0).all() and (instances[0, :3] == 1).all() and (instances[0, 4:] == 2).all()
    assert instances[2, 0, 5] == 2 and instances[2, 5, 0] == 3  # numbered by first pixel, row-major
    ids = np.zeros((3, 6, 7), dtype=np.uint16)
    ids[:, :2, :2], ids[:, 4:, 3:] = 7, 9  # three values: instance labels, kept as they are
    tifffile.imwrite(tmp_path / "ids.tif", ids, photometric="minisblack")
    _, kept = load_tiff_pair(tmp_path / "train-volume.tif", tmp_path / "ids.tif")
    assert torch.equal(kept, torch.from_numpy(ids.astype(np.int64)))


def test_tiff_errors_are_one_line(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 5, 5), dtype=np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((2, 5, 6), dtype=np.uint8), photometric="minisblack")
    (tmp_path / "c.tif").write_text("not a tiff")
    with pytest.raises(InputError, match=r"b\.tif has shape \(2, 5, 6\), but the images .* have \(2, 5, 5\)"):
        load_tiff_pair(tmp_path / "a.tif", tmp_path / "b.tif")
    with pytest.raises(InputError, match="TIFF file not found"):
        load_tiff_pair(tmp_path / "a.tif", tmp_path / "missing.tif")
    with pytest.raises(InputError, match=r"cannot read .*c\.tif as TIFF"):
        load_tiff_pair(tmp_path / "a.tif", tmp_path / "c.tif")


def test_datamodule_splits_and_ragged_batches(tmp_path):
    data = EMCellsData(seed=0, size=64, val_size=2, test_size=3)
    val, test = data.dataset("val"), data.dataset("test")
    assert len(val) == 2 and len(test) == 3
    batch = collate_cells([val[0], val[1]])
    assert batch.images.shape == (2, 3, 64, 64) and batch.batch_size == 2
    for masks, boxes in zip(batch.masks, batch.boxes, strict=True):
        assert masks.shape[0] == boxes.shape[0] > 0
        ys, xs = masks[0].nonzero(as_tuple=True)
        assert boxes[0].tolist() == [
            xs.min().item(),
            ys.min().item(),
            xs.max().item() + 1,
            ys.max().item() + 1,
        ]
    assert not torch.equal(val[0].image, test[0].image)  # disjoint streams
    with pytest.raises(ConfigError, match="come together"):
        EMCellsData(seed=0, images="x.tif")
    stack = np.full((6, 32, 32), 255, dtype=np.uint8)
    stack[:, 16] = 0
    tifffile.imwrite(tmp_path / "v.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "l.tif", stack, photometric="minisblack")
    real = EMCellsData(
        seed=0, images=str(tmp_path / "v.tif"), labels=str(tmp_path / "l.tif"), val_size=1, test_size=2
    )
    assert [len(real.dataset(s)) for s in ("train", "val", "test")] == [3, 1, 2]
    assert real.dataset("test")[0].masks.shape == (2, 32, 32)
