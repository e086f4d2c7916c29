"""Image GANs: DCGAN / MAD-GAN / KTG runs end to end, the classifier cache, score sense checks, errors."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import Subset

from attnlab.cli import main
from attnlab.data.fashion_mnist import FashionMNISTData
from attnlab.metrics.gan_scores import frechet_feature_distance, inception_like_score
from attnlab.train.gan_classifier import cache_file, domain_scorer
from attnlab.train.gan_data import to_gan_images
from attnlab.train.report import read_scalars
from tests.train.conftest import metrics_of


def tiny(tmp_path: Path) -> list[str]:
    """A run of seconds: narrow networks, 3 steps, a briefly trained classifier cached in tmp_path."""
    return [
        "--model.g_width", "4", "--model.d_width", "4",
        "--task.classifier_steps", "3", "--task.classifier_cache", str(tmp_path / "cache"),
        "--task.reference_size", "200", "--task.grid_codes", "4",
        "--data.val_size", "100", "--data.eval_batch_size", "50", "--data.batch_size", "8",
        "--trainer.max_steps", "3", "--trainer.val_every", "3", "--trainer.checkpoint_every", "3",
        "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
        "--trainer.progress_bar", "false", "--trainer.log_every", "1",
    ]  # fmt: skip


@pytest.mark.parametrize("recipe", ["dcgan-fmnist", "madgan-fmnist", "ktg_gan-fmnist"])
def test_gan_recipes_run_and_report_scores_floors_and_samples(tmp_path: Path, recipe: str):
    run_dir = tmp_path / "run"
    assert main(["run", recipe, "--run-dir", str(run_dir), *tiny(tmp_path)]) == 0
    metrics = metrics_of(run_dir)
    for key in ("is_like", "is_like_std", "fid_like", "floor/is_like", "floor/fid_like", "data/is_like"):
        assert f"test/{key}" in metrics, key
    assert (run_dir / "figures/samples.png").is_file()
    assert cache_file(tmp_path / "cache", 32, 3, 0).is_file()
    tags = set(read_scalars(run_dir / "tb"))
    assert {"train/discriminator/real", "train/discriminator/fake", "train/generator/loss"} <= tags
    if recipe == "ktg_gan-fmnist":
        assert {"train/generator/D->0", "train/generator/1->0", "train/generator/0->2"} <= tags
    else:
        assert "train/generator/g0/adv" in tags


def test_the_generator_optimiser_owns_only_the_generators(tmp_path: Path):
    """With the discriminator's lr at 1e-12 the generators move and the discriminator does not: the
    generators' optimiser (lr 2e-4) steps no discriminator parameter."""
    from safetensors.torch import load_file

    from attnlab.models import create_model

    run_dir = tmp_path / "run"
    args = [*tiny(tmp_path), "--optim.discriminator.lr", "1e-12"]  # D practically frozen
    assert main(["run", "madgan-fmnist", "--run-dir", str(run_dir), *args]) == 0
    torch.manual_seed(0)  # the recipe's seed builds the same initial weights
    initial = create_model("madgan-k3-32", g_width=4, d_width=4, spectral_norm=True).state_dict()
    final = load_file(run_dir / "model.safetensors")
    g_moved = [
        k
        for k in final
        if k.startswith("generator.") and "weight" in k and not torch.equal(final[k], initial[k])
    ]
    assert g_moved
    d_conv = "discriminator.head.parametrizations.weight.original"
    torch.testing.assert_close(final[d_conv], initial[d_conv], atol=1e-8, rtol=0)


def test_unknown_gate_and_missing_graph_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    graph = {f"{s}->{t}": "through" for t in range(3) for s in ["D", "0", "1", "2"] if s != str(t)}
    graph["1->0"] = "sometimes"
    code = main(["run", "ktg_gan-fmnist", "--run-dir", str(tmp_path / "r"), "--task.graph", json.dumps(graph),
                 *tiny(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "unknown gate 'sometimes' on edge '1->0'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code = main(
        ["run", "dcgan-fmnist", "--run-dir", str(tmp_path / "r2"), "--task.method", "ktg", *tiny(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "task.method: ktg needs task.graph" in err


@pytest.fixture(scope="module")
def scorer_and_data(tmp_path_factory: pytest.TempPathFactory):
    data = FashionMNISTData(seed=0, val_size=2000)
    train = Subset(data.build("train"), range(20000))
    scorer = domain_scorer(
        train, data.build("val"), cache=tmp_path_factory.mktemp("cache"), size=32, steps=150, seed=0,
        reference_size=2000,
    )  # fmt: skip
    held_out = torch.stack([data.build("test")[i]["input"] for i in range(1000)])
    return scorer, to_gan_images(held_out, 32)


def _scores(scorer, images: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        out = scorer.classifier(images)
    return inception_like_score(out.logits)[0], frechet_feature_distance(out.features, scorer.reference)


def test_real_images_score_best_and_one_image_scores_worst(scorer_and_data):
    scorer, real = scorer_and_data
    assert scorer.accuracy > 0.7
    g = torch.Generator().manual_seed(0)
    candidates = {
        "real": real,
        "noisy real": (real + 0.5 * torch.randn(real.shape, generator=g)).clamp(-1, 1),
        "uniform noise": torch.rand(real.shape, generator=g) * 2 - 1,
        "one image": real[:1].expand_as(real).clone(),
    }
    scores = {name: _scores(scorer, images) for name, images in candidates.items()}
    is_like = {name: s[0] for name, s in scores.items()}
    fid_like = {name: s[1] for name, s in scores.items()}
    assert max(is_like, key=is_like.__getitem__) == "real"
    assert min(fid_like, key=fid_like.__getitem__) == "real"
    assert min(is_like, key=is_like.__getitem__) == "one image"
    assert is_like["one image"] == pytest.approx(1.0, abs=1e-6)
    assert fid_like["one image"] > fid_like["noisy real"] > fid_like["real"]


def test_the_classifier_is_cached(tmp_path: Path):
    data = FashionMNISTData(seed=0, val_size=100)
    train, val = Subset(data.build("train"), range(256)), data.build("val")
    first = domain_scorer(train, val, cache=tmp_path, size=32, steps=2, seed=0, reference_size=100)
    second = domain_scorer(train, val, cache=tmp_path, size=32, steps=2, seed=0, reference_size=100)
    x = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(first.classifier(x).logits, second.classifier(x).logits)
    torch.testing.assert_close(first.reference[1], second.reference[1])


def test_a_cache_without_reference_features_gains_the_same_ones(tmp_path: Path):
    """Caches written before the features were kept hold only their mean and covariance; the
    features recomputed on first use have exactly those statistics."""
    from safetensors.torch import load_file, save_file

    data = FashionMNISTData(seed=0, val_size=100)
    train, val = Subset(data.build("train"), range(256)), data.build("val")
    first = domain_scorer(train, val, cache=tmp_path, size=32, steps=2, seed=0, reference_size=100)
    path = cache_file(tmp_path, 32, 2, 0)
    old = {k: v for k, v in load_file(path).items() if k != "ref.features"}
    save_file(old, path)
    again = domain_scorer(train, val, cache=tmp_path, size=32, steps=2, seed=0, reference_size=100)
    assert "ref.features" in load_file(path)
    torch.testing.assert_close(again.reference_features, first.reference_features)
    torch.testing.assert_close(again.reference[0], old["ref.mean"], rtol=0, atol=1e-12)
    torch.testing.assert_close(again.reference[1], old["ref.cov"], rtol=0, atol=1e-12)


def test_a_cifar10_folder_trains_three_channel_generators_with_their_own_classifier(tmp_path: Path):
    from tests.data.test_cifar import write_cifar10

    root = write_cifar10(tmp_path / "cifar", per_batch=8, test=10)
    run_dir = tmp_path / "run"
    args = [*tiny(tmp_path), "--data.name", "cifar10", "--data.root", str(root), "--data.val_size", "10",
            "--data.eval_batch_size", "10", "--task.reference_size", "20",
            "--model.channels", "3"]  # fmt: skip
    assert main(["run", "madgan-fmnist", "--run-dir", str(run_dir), *args]) == 0
    assert {"test/is_like", "test/fid_like", "test/data/is_like"} <= set(metrics_of(run_dir))
    assert cache_file(tmp_path / "cache", 32, 3, 0, "cifar10").is_file()
    assert not cache_file(tmp_path / "cache", 32, 3, 0).exists()  # not mixed with Fashion-MNIST's


def test_channels_that_do_not_match_the_data_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = [*tiny(tmp_path), "--model.channels", "3"]
    code = main(["run", "dcgan-fmnist", "--run-dir", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2 and "--model.channels 1" in err and "Traceback" not in err


def test_cifar_images_become_their_pixels_in_minus_one_to_one():
    from attnlab.data.cifar_data import MEAN, STD

    pixels = torch.randint(0, 256, (2, 3, 32, 32)).float() / 255
    normalised = (pixels - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    torch.testing.assert_close(to_gan_images(normalised, 32), pixels * 2 - 1)
    assert to_gan_images(normalised, 64).shape == (2, 3, 64, 64)


def test_ema_moves_every_step_and_is_saved(tmp_path: Path):
    """With beta 0 the saved average is the online generators' weights (it moved at every step); with
    beta 0.999 it differs from them, and the scores (of the averaged generators) differ from a run
    without it."""
    from safetensors.torch import load_file

    runs = {
        "plain": [],
        "beta0": ["--model.ema", "true", "--task.ema_beta", "0"],
        "beta999": ["--model.ema", "true"],
    }
    for name, extra in runs.items():
        assert main(["run", "dcgan-fmnist", "--run-dir", str(tmp_path / name), *tiny(tmp_path), *extra]) == 0
    same = load_file(tmp_path / "beta0" / "model.safetensors")
    names = [k.removeprefix("generator.") for k in same if k.startswith("generator.")]
    weights = [k for k in names if k.endswith(("weight", "bias"))]
    assert weights and all(torch.equal(same[f"generator.{k}"], same[f"generator_ema.{k}"]) for k in weights)
    apart = load_file(tmp_path / "beta999" / "model.safetensors")
    layer = "nets.0.to_image.weight"
    assert not torch.equal(apart[f"generator.{layer}"], apart[f"generator_ema.{layer}"])
    assert (
        metrics_of(tmp_path / "beta999")["test/fid_like"] != metrics_of(tmp_path / "plain")["test/fid_like"]
    )


def test_a_64_pixel_run_scores_with_its_own_classifier(tmp_path: Path):
    run_dir = tmp_path / "run64"
    assert (
        main(
            [
                "run",
                "ktg_gan-fmnist",
                "--model.name",
                "ktg-gan-k3-64",
                "--run-dir",
                str(run_dir),
                *tiny(tmp_path),
            ]
        )
        == 0
    )
    assert {"test/is_like", "test/fid_like", "test/g2/is_like"} <= set(metrics_of(run_dir))
    assert cache_file(tmp_path / "cache", 64, 3, 0).is_file()
