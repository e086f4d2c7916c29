import pytest
import torch

from attnlab.errors import InputError
from attnlab.models import create_model
from attnlab.models.gan.toy import DiscriminatorOutput, GANOutput, GeneratorOutput


def test_generator_and_discriminator_shapes_and_outputs():
    model = create_model("toy-gan", latent_dim=4)
    z = model.sample_noise(5)
    generated = model.generator(z)
    assert isinstance(generated, GeneratorOutput) and generated.points.shape == (5, 2)
    scored = model.discriminator(generated.points)
    assert isinstance(scored, DiscriminatorOutput) and scored.logits.shape == (5,)
    both = model(z)
    assert isinstance(both, GANOutput) and torch.equal(both.points, generated.points)


def test_noise_from_a_seeded_generator_is_reproducible():
    model = create_model("toy-gan")
    a = model.sample_noise(3, torch.Generator().manual_seed(1))
    b = model.sample_noise(3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_wrong_shapes_are_one_line_errors():
    model = create_model("toy-gan")
    with pytest.raises(InputError, match=r"z must be \(B, 2\)"):
        model.generator(torch.zeros(2, 3))
    with pytest.raises(InputError, match=r"points must be \(B, 2\)"):
        model.discriminator(torch.zeros(2, 3))
