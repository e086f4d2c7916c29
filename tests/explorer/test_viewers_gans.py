"""The GAN and StarGAN v2 viewers' answers, checked against the networks run directly: each
generator's sample for example i's latent code (the report grid's code i), the discriminator's
softmax, the knowledge transfer's Q maps from a hook on the tapped layer, and StarGAN v2's
translations G_ema(x, F_ema(z_n, source)) with C's classes; and their one-line refusals."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import load_run
from tests.explorer.conftest import scaled, view

QUICK = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
GAN = [
    "--model.g_width",
    "8",
    "--model.d_width",
    "8",
    "--data.batch_size",
    "4",
    "--data.eval_batch_size",
    "8",
    "--data.val_size",
    "16",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.limit_test_batches",
    "1",
    "--task.classifier_steps",
    "2",
    "--task.reference_size",
    "16",
]
STARGAN = [
    "--data.batch_size",
    "2",
    "--data.eval_batch_size",
    "8",
    "--data.val_size",
    "4",
    "--data.test_size",
    "4",
    "--data.source_train",
    "16",
    "--model.hidden_dim",
    "16",
    "--model.dim_in",
    "8",
    "--model.max_conv_dim",
    "16",
]
TRAINED = {  # run folder -> recipe and its overrides: a couple of steps at tiny widths
    "ktg": ["ktg_gan-fmnist", *GAN],
    "dcgan": ["dcgan-fmnist", *GAN],
    "stargan_ca": ["stargan2_class_aware-digits", *STARGAN],
    "stargan": ["stargan2-digits", *STARGAN],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnlab.cli import main
    from attnlab.data.fashion_mnist import DEFAULT_ROOT

    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    root = tmp_path_factory.mktemp("gans")
    cache = ["--task.classifier_cache", str(root / "_cache")]  # not the working folder's runs/_cache
    for name, (recipe, *overrides) in TRAINED.items():
        extra = cache if name in ("ktg", "dcgan") else []
        assert main(["run", recipe, "--run-dir", str(root / name), *QUICK, *overrides, *extra]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def pixels(url: str) -> np.ndarray:
    """A PNG data URL's pixels as int."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))), dtype=np.int64)


def as_png_pixels(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] mapped to 0..255 (not stretched: a flat sample must look flat)."""
    x = image.double().permute(1, 2, 0).clamp(-1, 1)
    x = x[..., 0] if x.shape[-1] == 1 else x
    return ((x + 1) / 2 * 255).round().numpy().astype(np.int64)


def note_values(line: str) -> list[float]:
    """The probabilities of a note "D's softmax on ...: G0 0.260 · G1 0.238 · ..."."""
    return [float(v) for v in re.findall(r" (\d\.\d{3})", line.split(": ", 1)[1])]


def test_each_generators_sample_for_the_codes_z_with_ds_softmax_and_q_maps(client: TestClient, runs: Path):
    got = view(client, "ktg", index=3)
    assert got["count"] == 32 and got["methods"] == [] and got["target"] is None
    loaded = load_run(runs / "ktg")
    model = loaded.task.model
    k, grid = model.config.num_generators, loaded.task.grid_codes
    z = torch.randn(grid, model.config.latent_dim, generator=torch.Generator().manual_seed(0))[3:4]
    taps: dict[str, torch.Tensor] = {}
    stack = model.generator.nets[0]  # the k generators as one grouped network
    hooks = [
        stack.blocks[int(tap[-1])].register_forward_hook(
            lambda m, i, out, tap=tap: taps.__setitem__(tap, out)
        )
        for tap in ("block1", "block2")
    ]
    with torch.no_grad():
        images, _ = model.generator(z)  # (1, k, 1, 32, 32)
        probs = model.discriminator(images[0]).softmax(-1)  # (k, k + 1)
    for hook in hooks:
        hook.remove()
    shown = [p for p in got["pictures"] if p["caption"].startswith("G")]
    assert [p["caption"] for p in shown] == [f"G{i}'s sample" for i in range(k)]
    for i, picture in enumerate(shown):
        assert np.abs(pixels(picture["png"]) - as_png_pixels(images[0, i])).max() <= 1
    assert np.abs(pixels(got["input"]["png"]) - as_png_pixels(images[0, 0])).max() <= 1
    for i in range(k):  # D's k + 1 outputs on generator i's sample, and its likeliest one
        assert note_values(got["notes"][i]) == pytest.approx(probs[i].tolist(), abs=6e-4)
        best = int(probs[i].argmax())
        assert got["prediction"][i]["label"] == f"G{i}'s sample: {(['G0', 'G1', 'G2', 'real'])[best]}"
        assert got["prediction"][i]["p"] == pytest.approx(float(probs[i, best]), abs=1e-4)
    assert [m["name"].split(":")[0] for m in got["maps"]] == ["block1", "block2"]
    for shown_map in got["maps"]:
        features = taps[shown_map["name"].split(":")[0]].unflatten(1, (k, -1))[0]  # (k, C, h, w)
        assert shown_map["shape"] == list(features.shape[-2:]) and len(shown_map["heads"]) == k
        for head, f in zip(shown_map["heads"], features, strict=True):
            q = f.square().mean(0)  # Q = mean over channels of F^2, by hand
            assert torch.tensor(head, dtype=torch.float64) == pytest.approx(scaled(q), abs=1e-4)


def test_the_discriminator_scores_a_real_test_image_and_dcgan_gives_p_real(client: TestClient, runs: Path):
    from attnlab.train.gan_data import to_gan_images

    got = view(client, "dcgan", index=5)
    loaded = load_run(runs / "dcgan")
    model, example = loaded.task.model, loaded.examples[5]
    z = torch.randn(32, model.config.latent_dim, generator=torch.Generator().manual_seed(0))[5:6]
    real = to_gan_images(example["input"][None], 32)
    with torch.no_grad():
        images, _ = model.generator(z)
        p_fake, p_test = model.discriminator(torch.cat([images[:, 0], real])).softmax(-1)[:, 1]  # P(real)
    assert [p["label"] for p in got["prediction"]] == ["G0's sample: real", "the test image: real"]
    assert [p["p"] for p in got["prediction"]] == pytest.approx([float(p_fake), float(p_test)], abs=1e-4)
    assert np.abs(pixels(got["pictures"][0]["png"]) - as_png_pixels(images[0, 0])).max() <= 1
    assert got["pictures"][-1]["caption"] == f"a real test image ({loaded.name(example['label'])})"
    assert np.abs(pixels(got["pictures"][-1]["png"]) - as_png_pixels(real[0])).max() <= 1
    assert got["maps"] == []  # DCGAN taps no layers


def test_stargan_translates_a_target_digit_with_seeded_styles_and_c_classifies(
    client: TestClient, runs: Path
):
    got = view(client, "stargan_ca", index=1)
    loaded = load_run(runs / "stargan_ca")
    model = loaded.task.stargan
    test = loaded.data.dataset("test")
    targets = [test[i] for i in range(len(test)) if int(test[i]["domains"]) == 1]
    assert got["count"] == len(targets) == 4
    x, label = targets[1]["images"][None], targets[1]["labels"]
    z = torch.randn(4, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    source = torch.zeros(4, dtype=torch.int64)
    with torch.no_grad():
        ema = model.ema
        fakes = ema["generator"](x.expand(4, -1, -1, -1), ema["mapping_network"](z, source))
        probs = model.classifier(model.generator.encoder(fakes)).softmax(-1)  # C on G_enc: (4, 10)
    assert np.abs(pixels(got["input"]["png"]) - as_png_pixels(x[0])).max() <= 1
    assert [p["caption"] for p in got["pictures"]] == [
        f"into the source domain, latent {n}" for n in range(4)
    ]
    for picture, fake in zip(got["pictures"], fakes, strict=True):
        assert np.abs(pixels(picture["png"]) - as_png_pixels(fake)).max() <= 1
    mean = probs.mean(0)
    assert got["prediction"][0]["label"] == f"C, mean of the translations: {loaded.name(mean.argmax())}"
    assert got["prediction"][0]["p"] == pytest.approx(float(mean.max()), abs=1e-4)
    for n, shown in enumerate(got["prediction"][1:]):
        assert shown["label"] == f"latent {n}: {loaded.name(probs[n].argmax())}"
        assert shown["p"] == pytest.approx(float(probs[n].max()), abs=1e-4)
    assert got["target"] == loaded.name(label)


def test_a_plain_stargan_shows_the_translations_alone(client: TestClient, runs: Path):
    got = view(client, "stargan", index=0)
    assert len(got["pictures"]) == 4 and got["prediction"] == []
    assert any("no class head" in line for line in got["notes"])


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("ktg", "a GAN is shown by its samples and D's softmax"),
        ("stargan_ca", "StarGAN v2 is shown by its translations"),
    ],
)
def test_a_map_method_is_refused_in_one_line(client: TestClient, run: str, message: str):
    response = client.get("/api/view", params={"id": run, "method": "gradcam"})
    assert response.status_code == 422 and message in response.json()["detail"]
