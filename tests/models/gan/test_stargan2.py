"""StarGAN v2 against the official code's golden (``scripts/stargan2_golden.py`` ran clovaai/stargan-v2
at commit 875b70a: networks and losses at 64x64, 3 domains), and the class-aware terms, the
lambda_ds schedule and the EMA against hand computations."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.models import create_model
from attnlab.models.gan.stargan2 import StarGAN2, StarGAN2Config
from attnlab.objectives.stargan2 import (
    StarGAN2LossConfig,
    Translation,
    class_aware_terms,
    discriminator_loss_terms,
    generator_loss_terms,
)
from attnlab.objectives.terms import weighted_sum
from tests.models.gan._stargan2_golden import (
    IMG_SIZE,
    LATENT_DIM,
    MAX_CONV_DIM,
    NUM_DOMAINS,
    STYLE_DIM,
    fill,
)

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "stargan2_official" / "golden.pt"
NETS = ("generator", "mapping_network", "style_encoder", "discriminator")  # the script's seed order


@pytest.fixture(scope="module")
def golden() -> dict:
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope="module")
def model() -> StarGAN2:
    config = StarGAN2Config(
        img_size=IMG_SIZE,
        num_domains=NUM_DOMAINS,
        latent_dim=LATENT_DIM,
        style_dim=STYLE_DIM,
        max_conv_dim=MAX_CONV_DIM,
    )
    model = StarGAN2(config)
    for seed, name in enumerate(NETS):
        net = getattr(model, name)
        net.load_state_dict(fill(net.state_dict(), seed))
    # float64, as the golden: in float32 the instance norms' scale gradients (sums of cancelling
    # products) depend on the CPU's summation order by 1e-4 relative
    return model.double()


def translation(x: dict, by_reference: bool) -> Translation:
    sources = (x["x_ref"], x["x_ref2"]) if by_reference else (x["z"], x["z2"])
    return Translation(x["x"], x["y_org"], x["y_trg"], *sources, by_reference=by_reference)


def grad_norms(module: torch.nn.Module) -> dict[str, float]:
    return {
        n: float(p.grad.double().square().sum()) for n, p in module.named_parameters() if p.grad is not None
    }


def assert_norms_close(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert ours.keys() == theirs.keys()  # the official parameter names, every one with a gradient
    for name in theirs:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-20), name


def test_networks_equal_the_official_ones(model, golden):
    x, out = golden["inputs"], golden["outputs"]
    with torch.no_grad():
        style = model.mapping_network(x["z"], x["y_trg"])
        torch.testing.assert_close(style, out["style"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(model.generator(x["x"], style), out["fake"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(
            model.style_encoder(x["x"], x["y_org"]), out["style_enc"], rtol=1e-10, atol=1e-12
        )
        torch.testing.assert_close(
            model.discriminator(x["x"], x["y_org"]), out["d_logits"], rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize("mode", ["latent", "reference"])
def test_discriminator_loss_and_gradients_equal_the_official_ones(model, golden, mode):
    model.zero_grad()
    terms = discriminator_loss_terms(
        model, translation(golden["inputs"], mode == "reference"), StarGAN2LossConfig()
    )
    loss = weighted_sum(terms)
    loss.backward()
    ref = golden[f"d_{mode}"]
    assert loss.item() == pytest.approx(ref["loss"], rel=1e-10)
    for name in ("real", "fake", "reg"):
        assert terms[name].item() == pytest.approx(ref["terms"][name], rel=1e-10), name
    assert_norms_close(grad_norms(model.discriminator), ref["grads"])


@pytest.mark.parametrize("mode", ["latent", "reference"])
def test_generator_loss_and_gradients_equal_the_official_ones(model, golden, mode):
    model.zero_grad()
    terms, _ = generator_loss_terms(
        model, translation(golden["inputs"], mode == "reference"), StarGAN2LossConfig(), step=0
    )
    loss = weighted_sum(terms)
    loss.backward()
    ref = golden[f"g_{mode}"]
    assert loss.item() == pytest.approx(ref["loss"], rel=1e-10)
    assert -terms["ds"].item() == pytest.approx(ref["terms"]["ds"], rel=1e-10)  # ours carries the minus
    for name in ("adv", "sty", "cyc"):
        assert terms[name].item() == pytest.approx(ref["terms"][name], rel=1e-10), name
    for net in ("generator", "mapping_network", "style_encoder"):
        assert_norms_close(grad_norms(getattr(model, net)), ref["grads"][net])


def test_ds_weight_follows_the_official_decrement_loop():
    config = StarGAN2LossConfig(lambda_ds=2.0, ds_iter=7)
    lam, seen = config.lambda_ds, []
    for _ in range(12):  # solver.train: use, then subtract lambda_ds / ds_iter while positive
        seen.append(lam)
        if lam > 0:
            lam -= config.lambda_ds / config.ds_iter
    assert [config.ds_weight(i) for i in range(12)] == pytest.approx([max(v, 0) for v in seen], abs=1e-12)


def class_aware_model() -> StarGAN2:
    torch.manual_seed(0)
    return create_model("stargan2_class_aware-32")


def test_class_aware_terms_equal_a_float64_computation_and_use_only_the_labelled_images():
    model = class_aware_model().double()
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    x_fake = torch.rand(4, 3, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    labels, labelled = torch.tensor([3, 7, 1, 0]), torch.tensor([True, False, True, False])
    terms = class_aware_terms(
        model, x, x_fake, labels, labelled, StarGAN2LossConfig(lambda_task=2.0, lambda_sem=0.5)
    )
    logits, fake_logits = model.classify(x), model.classify(x_fake)
    task = -(logits.log_softmax(-1)[[0, 2], [3, 1]]).mean()
    sem = -(logits.softmax(-1) * fake_logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(terms["task"], 2.0 * task, rtol=1e-12, atol=0)
    torch.testing.assert_close(terms["sem"], 0.5 * sem, rtol=1e-12, atol=0)
    relabelled = class_aware_terms(
        model, x, x_fake, torch.tensor([3, 0, 1, 9]), labelled, StarGAN2LossConfig()
    )
    torch.testing.assert_close(relabelled["task"], task, rtol=1e-12, atol=0)  # target labels never used
    none = class_aware_terms(model, x, x_fake, labels, torch.zeros(4, dtype=torch.bool), StarGAN2LossConfig())
    assert none["task"].item() == 0.0


def test_sem_gives_no_gradient_through_the_pseudo_labels():
    model = class_aware_model()
    x = torch.zeros(2, 3, 32, 32, requires_grad=True)
    x_fake = torch.rand(2, 3, 32, 32) * 2 - 1
    terms = class_aware_terms(
        model, x, x_fake, torch.tensor([0, 1]), torch.zeros(2, dtype=torch.bool), StarGAN2LossConfig()
    )
    terms["sem"].backward()
    assert x.grad is None or x.grad.abs().sum() == 0


def test_ema_is_the_reference_lerp_and_translates_with_the_averaged_networks():
    model = create_model("stargan2-32")
    before = {n: p.clone() for n, p in model.ema.named_parameters()}
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    model.update_ema(0.9)
    online = dict(model.generator.named_parameters())
    for name, p in model.ema["generator"].named_parameters():
        torch.testing.assert_close(p, 0.9 * before[f"generator.{name}"] + 0.1 * online[name])
    inputs = model.example_inputs(2)
    out = model.translate(inputs["images"], inputs["domains"], inputs["z"])
    with torch.no_grad():
        ema = model.ema
        expected = ema["generator"](inputs["images"], ema["mapping_network"](inputs["z"], inputs["domains"]))
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_bad_inputs_and_configs_are_one_line_errors():
    model = create_model("stargan2-32")
    z = torch.randn(2, 16)
    with pytest.raises(InputError, match=r"\(B, 3, 32, 32\) float"):
        model(torch.rand(2, 1, 32, 32), torch.tensor([0, 1]), z)
    with pytest.raises(InputError, match=r"\(B, 3, 32, 32\) float"):
        model(torch.rand(2, 3, 28, 28), torch.tensor([0, 1]), z)
    with pytest.raises(InputError, match=r"domains must be in \[0, 2\)"):
        model(torch.rand(2, 3, 32, 32), torch.tensor([0, 2]), z)
    with pytest.raises(InputError, match="z must be"):
        model(torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), torch.randn(2, 8))
    with pytest.raises(ConfigError, match="no class head"):
        model.classify(torch.rand(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="power of two"):
        create_model("stargan2-32", img_size=48)
    with pytest.raises(ConfigError, match="ds_iter"):
        StarGAN2LossConfig(ds_iter=0).check()
