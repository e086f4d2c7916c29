"""The small official-architecture SAM of shared/reference/sam: its state dict loads into ours key for
key, and every golden tensor (encoder, prompt encoder, decoder, post-processing) matches."""

import json

import pytest
import torch

from attnlab.models import create_model
from attnlab.models.sam.sam import SAM_VIT_B, SMALL_REFERENCE, Sam
from tests import _goldens

RTOL, ATOL = 1e-5, 1e-5


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, what
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL * expected.abs().max().item(), msg=what)


@pytest.fixture(scope="module")
def model() -> Sam:
    sam = Sam(SMALL_REFERENCE)
    sam.load_state_dict(_goldens.load("sam", "sam_small_state_dict.pt"))  # strict: no key mapping
    return sam.eval()


@pytest.fixture(scope="module")
def golden() -> dict:
    return _goldens.load("sam", "sam_small_golden.pt")


def test_the_preset_is_the_reference_config():
    cfg = json.loads((_goldens.reference("sam") / "sam_small_config.json").read_text())
    c = SMALL_REFERENCE
    got = (c.encoder_embed_dim, c.encoder_depth, c.encoder_num_heads, list(c.encoder_global_attn_indexes))
    assert got == (cfg["embed"], cfg["depth"], cfg["heads"], cfg["gidx"])
    assert (c.img_size, c.patch_size, c.window_size, c.prompt_embed_dim) == (
        cfg["img"], cfg["patch"], cfg["window"], cfg["pdim"],
    )  # fmt: skip
    assert (c.decoder_depth, c.decoder_mlp_dim, c.decoder_num_heads) == (
        cfg["dec_depth"], cfg["dec_mlp"], cfg["dec_heads"],
    )  # fmt: skip
    assert create_model("sam-small-reference").config == SMALL_REFERENCE


@torch.no_grad()
def test_image_embeddings_match(model: Sam, golden: dict):
    x, _ = model.preprocess(golden["input/image_uint8_range"])
    close(model.encode(x), golden["image_embeddings"], "image_embeddings")


@pytest.mark.parametrize("kind", ["box", "points"])
@torch.no_grad()
def test_prompts_masks_and_iou_match(model: Sam, golden: dict, kind: str):
    embeddings = golden["image_embeddings"]  # the decoder is tested on the golden's own embeddings
    for b in range(2):
        prompt = (
            {"boxes": golden["input/boxes_xyxy"][b]}
            if kind == "box"
            else {
                "points": golden["input/points_xy"][b : b + 1],
                "point_labels": golden["input/point_labels"][b : b + 1],
            }
        )
        sparse, dense = model.encode_prompts(**prompt)
        close(sparse, golden[f"{kind}/sparse_embeddings/{b}"], f"{kind} sparse {b}")
        close(dense, golden[f"{kind}/dense_embeddings/{b}"], f"{kind} dense {b}")
        for multimask in (False, True):
            key = f"multimask={multimask}"
            out = model.decode(embeddings[b : b + 1], multimask_output=multimask, **prompt)
            close(out.masks, golden[f"{kind}/low_res_masks/{key}/{b}"], f"{kind} low-res {key} {b}")
            close(out.iou_predictions, golden[f"{kind}/iou_predictions/{key}/{b}"], f"{kind} iou {key} {b}")
            full = model.postprocess(out.masks, (128, 128))
            close(full, golden[f"{kind}/masks_logits_full/{key}/{b}"], f"{kind} full {key} {b}")


@torch.no_grad()
def test_end_to_end_forward_matches_the_goldens(model: Sam, golden: dict):
    x, _ = model.preprocess(golden["input/image_uint8_range"])
    out = model(x, boxes=golden["input/boxes_xyxy"][:, 0], multimask_output=True)
    for b in range(2):
        close(out.masks[b : b + 1], golden[f"box/low_res_masks/multimask=True/{b}"], f"masks {b}")


def test_vit_b_has_the_official_keys_and_shapes():
    with torch.device("meta"):
        sam = Sam(SAM_VIT_B)
    ours = {k: tuple(v.shape) for k, v in sam.state_dict().items()}
    assert ours == _goldens.key_shapes("sam", "sam_vit_b_state_dict_keys.txt")
    assert sum(v.numel() for v in sam.state_dict().values()) == pytest.approx(93.7e6, rel=1e-3)
