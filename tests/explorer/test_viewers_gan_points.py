"""The 2-D points GAN's viewer, checked against the generator and discriminator run directly: example
i's 512 codes drawn with seed i, D's mean P(real) on the generated and on the real test points, the
plane its heat background covers, the report's mixture quality; the picture the same on every load,
k generators coloured apart, and the one-line refusal of a map method."""

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
from torch import nn

from attnlab.data.points import RingPointsData
from attnlab.explorer.app import create_app
from attnlab.explorer.viewers import EXAMPLES, VIEWERS, load_run
from attnlab.metrics.mixture import mixture_quality
from attnlab.models.gan.toy import DiscriminatorOutput, GeneratorOutput, ToyGAN
from attnlab.train.gan import GANTask
from tests.explorer.conftest import view

QUICK = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
SMALL = ["--data.val_size", "16", "--data.test_size", "64", "--model.hidden_dim", "16"]
CODES = 512


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from attnlab.cli import main

    root = tmp_path_factory.mktemp("gan_points")
    assert main(["run", "gan-points", "--run-dir", str(root / "points"), *QUICK, *SMALL]) == 0
    return root


@pytest.fixture(scope="module")
def client(runs: Path) -> TestClient:
    return TestClient(create_app(runs))


def real_points() -> torch.Tensor:
    """The test split's points (N, 2), from a datamodule made as the recipe makes it (seed 0)."""
    test = RingPointsData(seed=0, val_size=16, test_size=64).dataset("test")
    return torch.cat([test[i].points for i in range(len(test))])  # type: ignore[attr-defined]


def codes(seed: int) -> torch.Tensor:
    """Example ``seed``'s latent codes: N(0, I) in 2-D, drawn with that seed."""
    return torch.randn(CODES, 2, generator=torch.Generator().manual_seed(seed))


def decoded(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))))


def test_d_on_example_is_codes_and_on_the_real_points_as_the_networks_give_it(client: TestClient, runs: Path):
    got = view(client, "points", index=3)
    assert got["count"] == 32 and got["methods"] == [] and got["maps"] == [] and got["target"] is None
    model = load_run(runs / "points").task.model
    real, z = real_points(), codes(3)
    with torch.no_grad():
        fake = model.generator(z).points  # (512, 2)
        p_fake = model.discriminator(fake).logits.sigmoid()  # (512,)
        p_real = model.discriminator(real).logits.sigmoid()  # (N,)
    assert [p["label"] for p in got["prediction"]] == [
        "D's mean P(real) on the generated points",
        "D's mean P(real) on the real points",
    ]
    assert [p["p"] for p in got["prediction"]] == pytest.approx(
        [float(p_fake.mean()), float(p_real.mean())], abs=1e-4
    )
    assert list(got["generated"]) == ["generated"]  # the points drawn: G(z) for seed 3's codes
    assert torch.tensor(got["generated"]["generated"]) == pytest.approx(fake, abs=1e-4)
    assert got["input"]["kind"] == "points2d" and got["input"]["png"].startswith("data:image/png;base64,")
    assert f"{CODES} points from the codes of seed 3" in got["input"]["caption"]
    assert f"over the {len(real)} real test points" in got["input"]["caption"]
    # the heat background's square covers every point, real and generated, with a margin
    both = torch.cat([real, fake])
    low, high = both.min(0).values, both.max(0).values
    for axis, (start, end) in enumerate([got["plane"]["x"], got["plane"]["y"]]):
        assert start < float(low[axis]) and end > float(high[axis])
        assert (start + end) / 2 == pytest.approx(float(low[axis] + high[axis]) / 2, abs=1e-3)
        assert end - start == pytest.approx(float((high - low).max()) * 1.16, abs=1e-3)
    assert any("seed 3" in line for line in got["notes"])


def test_the_notes_give_the_reports_mixture_quality_of_both_clouds(client: TestClient, runs: Path):
    got = view(client, "points", index=0)
    model, data = load_run(runs / "points").task.model, RingPointsData(seed=0)
    with torch.no_grad():
        fake = model.generator(codes(0)).points
    for name, points in (("generated", fake), ("real", real_points())):
        line = next(line for line in got["notes"] if line.startswith(f"{name}: "))
        share, modes = re.findall(r"([\d.]+)% of points .*, (\d) of 8 modes", line)[0]
        quality = mixture_quality(points, data.centers, data.std, coverage=0.2)
        assert float(share) == pytest.approx(100 * float(quality["high_quality"]), abs=0.05)
        assert int(modes) == int(quality["modes"])


def test_the_picture_is_the_same_on_every_load_and_differs_between_seeds(client: TestClient, runs: Path):
    first = view(client, "points", index=5)["input"]["png"]
    again = view(TestClient(create_app(runs)), "points", index=5)["input"]["png"]  # a fresh load
    assert first == again
    other = decoded(view(client, "points", index=6)["input"]["png"])
    picture = decoded(first)
    assert picture.shape[0] > 200 and picture.shape[1] > 200
    assert picture.shape != other.shape or np.abs(picture.astype(int) - other.astype(int)).max() > 0


class TwoGenerators(nn.Module):
    """The trained toy GAN as a two-generator model: G0 its generator, G1 the same shifted by
    (1, 0); D's 3-way logits are (0, 0, D's logit), so its softmax's real column is known."""

    def __init__(self, gan: ToyGAN) -> None:
        super().__init__()
        self.gan = gan
        self.generator = self._generate  # a plain function: the viewer only calls it
        self.discriminator = self._discriminate

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.gan.sample_noise(n, generator)

    def _generate(self, z: torch.Tensor) -> GeneratorOutput:
        points = self.gan.generator(z).points
        return GeneratorOutput(points=torch.stack([points, points + torch.tensor([1.0, 0.0])], dim=1))

    def _discriminate(self, points: torch.Tensor) -> DiscriminatorOutput:
        logit = self.gan.discriminator(points).logits  # (N,)
        return DiscriminatorOutput(logits=torch.stack([torch.zeros_like(logit)] * 2 + [logit], dim=1))


def test_k_generators_are_coloured_apart_and_d_read_from_its_real_column(runs: Path):
    loaded = load_run(runs / "points")
    gan = loaded.task.model
    assert isinstance(loaded.task, GANTask) and isinstance(gan, ToyGAN)
    loaded.task.model = TwoGenerators(gan)  # this load only: the app's cache holds its own
    got = VIEWERS[GANTask](loaded, EXAMPLES[GANTask](loaded.data)[2], None)
    with torch.no_grad():
        fake = gan.generator(codes(2)).points
        shifted = fake + torch.tensor([1.0, 0.0])
        expected = [
            torch.cat([torch.zeros(len(p), 2), gan.discriminator(p).logits[:, None]], 1)
            for p in (fake, shifted, real_points())
        ]
    assert [p["label"] for p in got["prediction"]] == [
        "D's mean P(real) on the G0 points",
        "D's mean P(real) on the G1 points",
        "D's mean P(real) on the real points",
    ]
    means = [float(logits.softmax(-1)[:, -1].mean()) for logits in expected]
    assert [p["p"] for p in got["prediction"]] == pytest.approx(means, abs=1e-4)
    assert got["input"]["caption"].startswith("G0, G1: 512 points")
    assert torch.tensor(got["generated"]["G0"]) == pytest.approx(fake, abs=1e-4)
    assert torch.tensor(got["generated"]["G1"]) == pytest.approx(shifted, abs=1e-4)


def test_a_map_method_is_refused_in_one_line(client: TestClient):
    response = client.get("/api/view", params={"id": "points", "method": "gradcam"})
    assert response.status_code == 422
    assert "a points GAN is shown by its points and D's P(real)" in response.json()["detail"]
