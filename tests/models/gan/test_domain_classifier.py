import pytest
import torch

from attnlab.errors import InputError
from attnlab.models import create_model


def test_any_size_and_feature_width():
    model = create_model("gan-domain-classifier").eval()
    for size in (28, 32, 64):
        out = model(torch.randn(3, 1, size, size))
        assert out.logits.shape == (3, 10) and out.features.shape == (3, 128)
        torch.testing.assert_close(out.logits, model.head(out.features))


def test_bad_channels_is_one_line():
    with pytest.raises(InputError, match=r"images must be \(B, 1, H, W\)"):
        create_model("gan-domain-classifier")(torch.randn(2, 3, 32, 32))
