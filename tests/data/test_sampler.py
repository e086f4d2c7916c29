import itertools
from itertools import chain

import pytest

from attnlab.data.sampler import ResumableBatchSampler
from attnlab.errors import ConfigError


def take(sampler: ResumableBatchSampler, n: int) -> list[list[int]]:
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize("num_samples", [None, 10])
def test_starting_later_continues_the_same_stream(num_samples: int | None):
    whole = take(ResumableBatchSampler(num_samples=num_samples, batch_size=3, seed=5), 12)
    later = take(ResumableBatchSampler(num_samples=num_samples, batch_size=3, seed=5, start_batch=7), 5)
    assert later == whole[7:]


def test_finite_dataset_each_pass_is_a_permutation():
    sampler = ResumableBatchSampler(num_samples=12, batch_size=4, seed=1)
    batches = take(sampler, 6)
    first, second = list(chain(*batches[:3])), list(chain(*batches[3:]))
    assert sorted(first) == list(range(12)) and sorted(second) == list(range(12))
    assert first != second  # a fresh order each pass


def test_ranks_split_each_global_batch_without_overlap():
    ranks = [
        take(ResumableBatchSampler(num_samples=None, batch_size=2, seed=0, rank=r, world_size=3), 2)
        for r in range(3)
    ]
    step0 = sorted(chain(*(batches[0] for batches in ranks)))
    step1 = sorted(chain(*(batches[1] for batches in ranks)))
    assert step0 == list(range(6)) and step1 == list(range(6, 12))


def test_bad_settings():
    with pytest.raises(ConfigError):
        ResumableBatchSampler(num_samples=None, batch_size=0, seed=0)
    with pytest.raises(ConfigError):
        ResumableBatchSampler(num_samples=3, batch_size=4, seed=0)
