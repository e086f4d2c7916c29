"""Bad input to V-JEPA models is one clear line; other clip sizes evaluate the sinusoids anew."""

from __future__ import annotations

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.models import create_model
from attnlab.models.vjepa.encoder import VideoViT, VideoViTConfig
from attnlab.models.vjepa.positions import sincos_table_3d
from attnlab.models.vjepa.predictor import Predictor, PredictorConfig


@pytest.fixture
def model():
    return create_model("vjepa-small-reference").eval()


def test_clip_sizes_not_divisible_by_tubelet_or_patch(model):
    masks = ([torch.arange(4)[None]], [torch.arange(4, 8)[None]])
    for shape in [(1, 3, 3, 32, 32), (1, 3, 4, 30, 32), (1, 3, 4, 32, 0)]:
        with pytest.raises(
            InputError, match=r"must be positive multiples of \(tubelet_size, patch_size"
        ) as err:
            model(torch.zeros(shape), *masks)
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="clips must be floating"):
        model(torch.zeros(1, 1, 4, 32, 32), *masks)


def test_masks_that_leave_no_context_or_target(model):
    clips = torch.zeros(2, 3, 4, 32, 32)
    full, empty = torch.arange(32).expand(2, -1), torch.zeros(2, 0, dtype=torch.int64)
    with pytest.raises(InputError, match="leaves no context or no target"):
        model(clips, [empty], [full])
    with pytest.raises(InputError, match="leaves no context or no target"):
        model(clips, [full], [empty])
    with pytest.raises(InputError, match=r"mask indices must lie in \[0, 32\)"):
        model(clips, [torch.full((2, 3), 40)], [full])
    with pytest.raises(InputError, match="equally long"):
        model(clips, [full], [])


def test_bad_configs():
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        VideoViT(VideoViTConfig(img_size=30, patch_size=8))
    with pytest.raises(ConfigError, match="multiple of"):
        VideoViT(VideoViTConfig(num_frames=3, tubelet_size=2))
    for std in (0.0, -0.02, float("nan")):
        with pytest.raises(ConfigError, match="init_std must be > 0"):
            VideoViT(VideoViTConfig(init_std=std))
        with pytest.raises(ConfigError, match="predictor init_std must be > 0"):
            Predictor(PredictorConfig(grid=(2, 2, 2), embed_dim=64, init_std=std))


def test_another_clip_size_uses_the_sinusoids_of_its_grid(model):
    """Twice the frames: the encoder adds the (4, 4, 4) table, whose first 2 frames are the stored one."""
    clips = torch.randn(1, 3, 8, 32, 32)
    table = sincos_table_3d((4, 4, 4), 64, uniform_power=True)
    torch.testing.assert_close(model.encoder.positions((4, 4, 4))[0], table)
    torch.testing.assert_close(table[:32], model.encoder.pos_embed[0])
    assert model.encoder(clips).shape == (1, 64, 64)
