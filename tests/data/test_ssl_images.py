"""Fashion-MNIST views for pre-training: DINO multi-crops and MAE crops, a stream of passes whose
sample i depends only on (seed, i), evaluation views without local crops, a plain k-NN bank."""

from pathlib import Path

import pytest
import torch

from attnlab.data.ssl_images import FashionMNISTViews, collate_views
from attnlab.errors import ConfigError
from tests.data.test_idx import fake_mnist


def test_views_passes_and_bank(tmp_path: Path):
    fake_mnist(tmp_path, n_train=20, n_test=6)
    data = FashionMNISTViews(seed=3, root=str(tmp_path), val_size=4, knn_size=8, local_crops=3)
    train = data.build("train")
    assert train.procedural and len(train) == 16
    sample = train[5]
    assert [tuple(c.shape) for c in sample.crops] == [(1, 28, 28)] * 2 + [(1, 12, 12)] * 3
    again = FashionMNISTViews(seed=3, root=str(tmp_path), val_size=4, local_crops=3).build("train")[5]
    assert all(torch.equal(a, b) for a, b in zip(sample.crops, again.crops, strict=True))
    # one pass visits every image once, the next one in another order
    assert {train._image_index(i) for i in range(16)} == set(range(16))
    assert [train._image_index(i) for i in range(16)] != [train._image_index(16 + i) for i in range(16)]
    test = data.build("test")
    assert len(test[0].crops) == 2  # global crops only
    batch = collate_views([test[i] for i in range(3)])
    assert batch.batch_size == 3 and batch.images.shape == (3, 1, 28, 28)
    bank = next(iter(data.knn_dataloader()))
    assert bank.crops == [] and bank.images.shape == (8, 1, 28, 28)
    mae = FashionMNISTViews(seed=3, root=str(tmp_path), val_size=4, views="mae").build("train")[0]
    assert [tuple(c.shape) for c in mae.crops] == [(1, 28, 28)]


def test_bad_settings_are_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"data\.views"):
        FashionMNISTViews(seed=0, views="simclr")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="knn_size"):
        FashionMNISTViews(seed=0, knn_size=0)
