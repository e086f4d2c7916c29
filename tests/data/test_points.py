import dataclasses
from types import SimpleNamespace

import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from attnlab.data.batch import batch_size
from attnlab.data.points import PointSets, RingOfGaussians, RingPointsData, collate_point_sets, mode_centers
from attnlab.errors import ConfigError, InputError


def make(size: int | None = 64, seed: int = 3) -> RingOfGaussians:
    return RingOfGaussians(centers=mode_centers(8, 2.0), std=0.02, max_set_size=4, seed=seed, size=size)


def test_sets_are_ragged_and_lie_on_their_modes():
    data = make()
    sizes = {len(data[i].points) for i in range(len(data))}
    assert sizes == {1, 2, 3, 4}
    for i in range(len(data)):
        sample = data[i]
        assert sample.index == i and sample.points.shape == (len(sample.modes), 2)
        offset = sample.points - mode_centers(8, 2.0)[sample.modes]
        assert offset.norm(dim=1).max() < 0.02 * 6


def test_samples_are_a_pure_function_of_seed_and_index():
    a, b, other = make(), make(), make(seed=4)
    assert all(torch.equal(a[i].points, b[i].points) for i in range(10))
    assert not all(torch.equal(a[i].points, other[i].points[: len(a[i].points)]) for i in range(10))


def test_collate_keeps_every_set_and_the_batch_protocol_counts_sets():
    data = make()
    samples = [data[i] for i in range(5)]
    batch = collate_point_sets(samples)
    assert isinstance(batch, PointSets) and batch_size(batch) == 5
    assert batch.index.tolist() == [0, 1, 2, 3, 4]
    for sample, points, modes in zip(samples, batch.sets, batch.modes, strict=True):
        assert torch.equal(points, sample.points) and torch.equal(modes, sample.modes)
    assert torch.equal(batch.points(), torch.cat([s.points for s in samples]))


def test_lightning_moves_every_tensor_of_a_dataclass_batch():
    batch = collate_point_sets([make()[i] for i in range(4)])
    moved = move_data_to_device(batch, torch.device("meta"))  # what Lightning does before each step
    assert isinstance(moved, PointSets) and batch_size(moved) == 4
    assert all(t.device.type == "meta" for t in [*moved.sets, *moved.modes, moved.index])
    assert [t.shape for t in moved.sets] == [t.shape for t in batch.sets]
    assert all(t.device.type == "cpu" for t in batch.sets)  # the original is left alone


def test_the_datamodule_collate_hook_serves_every_split():
    data = RingPointsData(seed=0, batch_size=6, eval_batch_size=5, val_size=10, test_size=10)
    data.trainer = SimpleNamespace(global_step=0, accumulate_grad_batches=1, global_rank=0, world_size=1)
    for loader, size in (
        (data.train_dataloader(), 6),
        (data.val_dataloader(), 5),
        (data.test_dataloader(), 5),
    ):
        batch = next(iter(loader))
        assert isinstance(batch, PointSets) and batch_size(batch) == size


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="std > 0"):
        RingPointsData(seed=0, std=0.0)


@dataclasses.dataclass
class Plain:
    prompts: list[str]
    image: torch.Tensor


def test_batch_size_protocol():
    assert batch_size({"input": torch.zeros(3, 5), "label": torch.zeros(3)}) == 3
    assert batch_size(Plain(prompts=["a", "b"], image=torch.zeros(2, 3))) == 2  # first field: a list
    assert batch_size((torch.zeros(7, 2), torch.zeros(7))) == 7
    with pytest.raises(InputError, match="batch_size attribute"):
        batch_size({"scalar": torch.tensor(1.0)})
