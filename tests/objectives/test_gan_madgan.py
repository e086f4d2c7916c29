"""MAD-GAN's (k+1)-class losses against float64 maths written out per image."""

import math

import pytest
import torch

from attnlab.errors import InputError
from attnlab.objectives.gan_madgan import discriminator_terms, generator_terms, towards_real


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


def test_discriminator_terms_by_hand():
    real = torch.tensor([[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]])  # k = 2, real is class 2
    fake = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.5]], [[0.3, 0.2, 0.1], [-1.0, 2.0, 0.0]]])
    terms = discriminator_terms(real, fake)
    expected_real = (_ce([0.1, -0.2, 0.3], 2) + _ce([1.0, 0.0, -1.0], 2)) / 2
    expected_fake = sum(_ce(fake[b, i].tolist(), i) for b in range(2) for i in range(2)) / 4
    assert float(terms["real"]) == pytest.approx(expected_real, rel=1e-6)
    assert float(terms["fake"]) == pytest.approx(expected_fake, rel=1e-6)


def test_generator_terms_push_towards_real():
    fake = torch.randn(4, 3, 4, dtype=torch.float64)
    terms = generator_terms(fake)
    for i in range(3):
        expected = sum(_ce(fake[b, i].tolist(), 3) for b in range(4)) / 4
        assert float(terms[f"g{i}/adv"]) == pytest.approx(expected, rel=1e-12)


def test_k1_equals_dcgan_binary_loss():
    fake = torch.randn(6, 1, 2, dtype=torch.float64)
    d = fake[:, 0, 1] - fake[:, 0, 0]  # logit of "real" as a sigmoid
    expected = torch.nn.functional.softplus(-d).mean()
    torch.testing.assert_close(towards_real(fake)[0], expected)


def test_bad_shapes_are_one_line():
    with pytest.raises(InputError, match=r"logits must be real \(B, k\+1\) and fake \(B, k, k\+1\)"):
        discriminator_terms(torch.zeros(2, 3), torch.zeros(2, 3, 3))
