"""DCGAN generators/discriminators and MAD-GAN's k generators: layouts, grouped = loop, taps, errors."""

import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.models import create_model
from attnlab.models.gan.dcgan_discriminator import DCGANDiscriminator, DiscriminatorConfig
from attnlab.models.gan.dcgan_generator import DCGANGenerator, GeneratorConfig


@pytest.mark.parametrize("size, widths", [(32, [256, 128, 64]), (64, [512, 256, 128, 64])])
def test_generator_follows_the_paper_layout(size, widths):
    g = DCGANGenerator(GeneratorConfig(image_size=size))
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [*widths, 1]
    assert [c.stride for c in convs] == [(1, 1)] + [(2, 2)] * len(widths)
    images, _ = g(torch.randn(3, 100))
    assert images.shape == (3, 1, 1, size, size)
    assert images.abs().max() <= 1


@pytest.mark.parametrize("sn", [False, True])
def test_discriminator_layout_and_spectral_norm(sn):
    d = DCGANDiscriminator(DiscriminatorConfig(image_size=64, num_outputs=4, spectral_norm=sn))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 4]
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.modules()) is not sn
    assert all(hasattr(c, "parametrizations") == sn for c in convs)
    assert d(torch.randn(2, 1, 64, 64)).shape == (2, 4)


def test_spectral_norm_bounds_each_layer():
    d = DCGANDiscriminator(DiscriminatorConfig(image_size=32, spectral_norm=True)).train()
    for _ in range(30):  # power iterations converge
        d(torch.randn(2, 1, 32, 32))
    d.eval()
    with torch.no_grad():
        for conv in [m for m in d.modules() if isinstance(m, nn.Conv2d)]:
            sigma = float(torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2))
            assert sigma == pytest.approx(1.0, abs=0.02)


def test_grouped_generators_equal_separate_ones_with_the_same_weights():
    torch.manual_seed(0)
    taps = ("block0", "block2")
    separate = [DCGANGenerator(GeneratorConfig(width=8, taps=taps)) for _ in range(3)]
    loop = DCGANGenerator(GeneratorConfig(width=8, num_generators=3, batched=False, taps=taps))
    for net, g in zip(loop.nets, separate, strict=True):
        net.load_state_dict(g.nets[0].state_dict())
    grouped = DCGANGenerator(GeneratorConfig(width=8, num_generators=3, taps=taps))
    grouped.load_from_separate(separate)
    z = torch.randn(5, 100)
    for mode in ("train", "eval"):  # batch statistics and running statistics
        for m in (grouped, loop, *separate):
            m.train(mode == "train")
        images, features = grouped(z)
        loop_images, loop_features = loop(z)
        for i, g in enumerate(separate):
            own, own_features = g(z)
            torch.testing.assert_close(images[:, i], own[:, 0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(loop_images[:, i], own[:, 0])
            for t in taps:
                torch.testing.assert_close(features[t][:, i], own_features[t][:, 0], atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(loop_features[t][:, i], own_features[t][:, 0])


def test_generators_differ_and_share_z():
    model = create_model("madgan-k3-32", g_width=8, d_width=8)
    out = model(torch.randn(4, 100))
    assert out.images.shape == (4, 3, 1, 32, 32) and out.logits.shape == (4, 3, 4)
    assert not torch.allclose(out.images[:, 0], out.images[:, 1])


def test_feature_taps_shapes():
    model = create_model("ktg-gan-k3-32", g_width=8, d_width=8)
    out = model(torch.randn(2, 100))
    assert {k: tuple(v.shape) for k, v in out.features.items()} == {
        "block1": (2, 3, 16, 8, 8),
        "block2": (2, 3, 8, 16, 16),
    }


def test_a_tap_on_a_missing_layer_is_one_line():
    with pytest.raises(
        ConfigError, match=r"no generator layer 'block5' to tap; its layers: block0, block1, block2$"
    ):
        create_model("ktg-gan-k3-32", taps=("block5",))


def test_bad_inputs_are_one_line():
    model = create_model("dcgan-32")
    with pytest.raises(InputError, match=r"z must be \(B, 100\)"):
        model(torch.randn(2, 7))
    with pytest.raises(InputError, match=r"images must be \(B, 1, 32, 32\)"):
        model.discriminator(torch.randn(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="power of two"):
        create_model("dcgan-32", image_size=48)


def test_ema_is_a_lerp_of_the_weights():
    torch.manual_seed(0)
    model = create_model("madgan-k3-32", g_width=4, d_width=4, ema=True)
    with torch.no_grad():  # move the online generators away from the average
        for p in model.generator.parameters():
            p.add_(torch.randn_like(p))
    before = {n: p.double().clone() for n, p in model.generator_ema.named_parameters()}
    online = {n: p.double() for n, p in model.generator.named_parameters()}
    model.update_ema(0.9)
    for name, p in model.generator_ema.named_parameters():
        torch.testing.assert_close(p.double(), 0.9 * before[name] + 0.1 * online[name], rtol=0, atol=1e-6)
        assert not p.requires_grad
    model.eval()
    z = torch.randn(2, 100)
    torch.testing.assert_close(model(z, averaged=True).images, model.generator_ema(z)[0])
    assert not torch.allclose(model(z, averaged=True).images, model(z).images)


def test_standing_statistics_are_plain_means_over_the_averaged_generators_outputs():
    """After standing_statistics every BatchNorm of the EMA generators holds the mean over the
    batches of its inputs' per-batch mean and unbiased variance (hooks record the inputs); its
    momentum is back, and the online generators' statistics are untouched."""
    torch.manual_seed(0)
    model = create_model("madgan-k3-32", g_width=4, d_width=4, ema=True)
    norms = [m for m in model.generator_ema.modules() if isinstance(m, nn.BatchNorm2d)]
    online_stats = [b.clone() for b in model.generator.buffers()]
    seen: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(norms))}
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].detach().double()))
        for i, m in enumerate(norms)
    ]
    model.standing_statistics(batches=3, batch_size=8, seed=5)
    for h in hooks:
        h.remove()
    for i, m in enumerate(norms):
        assert len(seen[i]) == 3 and m.momentum == 0.1
        means = torch.stack([x.transpose(0, 1).flatten(1).mean(1) for x in seen[i]]).mean(0)
        variances = torch.stack([x.transpose(0, 1).flatten(1).var(1) for x in seen[i]]).mean(0)
        torch.testing.assert_close(m.running_mean.double(), means, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.running_var.double(), variances, rtol=1e-5, atol=1e-6)
    for before, after in zip(online_stats, model.generator.buffers(), strict=True):
        assert torch.equal(before, after)
    assert not model.generator_ema.training or model.training  # its mode is restored


def test_without_ema_the_online_generators_sample():
    model = create_model("dcgan-32", g_width=4, d_width=4).eval()
    z = torch.randn(2, 100)
    assert model.generator_ema is None and model.sampler() is model.generator
    torch.testing.assert_close(model(z, averaged=True).images, model(z).images)
    with pytest.raises(ConfigError, match="ema: true"):
        model.update_ema(0.9)
    with pytest.raises(ConfigError, match="ema: true"):
        model.standing_statistics()
