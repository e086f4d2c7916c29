"""Bad input to SAM fails with one line naming the problem; official checkpoints load by path."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.sam.sam import SAM_VIT_B, SMALL_REFERENCE, Sam, SamConfig
from attnlab.runs.official import load_official_sam
from tests import _goldens


@pytest.fixture(scope="module")
def model() -> Sam:
    return Sam(SMALL_REFERENCE).eval()


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_images_of_the_wrong_size_or_channels(model: Sam):
    with pytest.raises(InputError, match=r"SAM takes images \(B, 3, H, W\)") as err:
        model.preprocess(torch.rand(1, 1, 64, 64))
    one_line(err)
    with pytest.raises(InputError, match=r"image encoder takes float \(B, 3, 128, 128\)"):
        model.encode(torch.rand(1, 3, 64, 64))
    with pytest.raises(InputError, match=r"image embeddings must be \(B, 64, 8, 8\)"):
        model.decode(torch.rand(1, 64, 4, 4), boxes=torch.tensor([[0.0, 0, 10, 10]]))
    with pytest.raises(InputError, match="2 image embeddings for 3 prompt sets"):
        model.decode(torch.rand(2, 64, 8, 8), boxes=torch.tensor([[0.0, 0, 10, 10]] * 3))


def test_bad_prompts(model: Sam):
    emb = torch.rand(1, 64, 8, 8)
    with pytest.raises(InputError, match=r"outside the 128x128 image"):
        model.decode(emb, boxes=torch.tensor([[0.0, 0, 200, 10]]))
    with pytest.raises(InputError, match="zero area"):
        model.decode(emb, boxes=torch.tensor([[10.0, 10, 30, 10]]))
    with pytest.raises(InputError, match=r"mask prompts must be \(B, 1, 32, 32\)"):
        model.decode(emb, mask_inputs=torch.rand(1, 1, 64, 64))
    with pytest.raises(InputError, match=r"points must be coords \(B, N, 2\) and labels \(B, N\)"):
        model.decode(emb, points=torch.rand(1, 2, 3), point_labels=torch.ones(1, 2))
    with pytest.raises(InputError, match="at least one prompt"):
        model.decode(emb)


def test_the_reference_checkpoint_loads_by_path_and_another_layout_is_named(tmp_path):
    path = _goldens.reference("sam") / "sam_small_state_dict.pt"
    loaded = load_official_sam(path, SMALL_REFERENCE)
    state = torch.load(path, weights_only=True)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    # a token model takes the official file; the token keeps its initialisation
    tuned = load_official_sam(path, SamConfig(**{**SMALL_REFERENCE.__dict__, "prompt_token_dim": 128}))
    assert torch.equal(tuned.mask_decoder.iou_token.weight, state["mask_decoder.iou_token.weight"])
    with pytest.raises(
        InputError, match=r"does not fit the model: .*missing keys \(image_encoder\.blocks\.10"
    ):
        load_official_sam(path, SAM_VIT_B)
    deeper = SamConfig(
        **{**SMALL_REFERENCE.__dict__, "encoder_depth": 1, "encoder_global_attn_indexes": (0,)}
    )
    with pytest.raises(
        InputError, match=r"1\d* unexpected keys \(image_encoder\.blocks\.1\.attn\.proj\.bias"
    ):
        load_official_sam(path, deeper)
    other = tmp_path / "vit.pt"
    torch.save({"patch_embed.proj.weight": torch.zeros(1), "blocks.0.attn.qkv.weight": torch.zeros(1)}, other)
    with pytest.raises(InputError, match=r"is not a SAM checkpoint .* its first keys: blocks\.0\.attn\.qkv"):
        load_official_sam(other, SMALL_REFERENCE)
