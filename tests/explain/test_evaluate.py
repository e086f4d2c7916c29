"""Explanation-metric tables: constructed cases with known answers, applicability, the CAM layer, runs."""

import math

import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain.attention_maps import attention_rollout
from attnlab.explain.cam import upsample
from attnlab.explain.maps import METHODS, center_maps, default_cam_layer, explanation_maps
from attnlab.explain.metrics import box_masks
from attnlab.explain.regions import box_regions, foreground_regions
from attnlab.explain.scoring import Score, evaluate_explanations
from attnlab.explain.tables import markdown_table
from attnlab.layers.residual import ResNetConfig
from attnlab.models.abn.resnet_abn import ABNConfig, AttentionBranchNetwork
from attnlab.models.abn.st_abn import STABN, STABNConfig
from attnlab.models.classifiers.resnet import ResNet
from attnlab.models.classifiers.vit import VisionTransformer, ViTConfig

BOX = (2, 3, 6, 7)  # x1, y1, x2, y2: rows 3-6, columns 2-5
OUTSIDE = (8, 0, 12, 2)  # disjoint from BOX and far from it
SIZE = 12


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: threads only add overhead


class BoxScorer(nn.Module):
    """Class 0's score grows with the mean of the pixels inside a known region; class 1's is 0."""

    def __init__(self, region: torch.Tensor, gain: float = 12.0) -> None:
        super().__init__()
        self.register_buffer("region", region.float())  # (*S)
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = (x * self.region).flatten(1).sum(1) / (self.region.sum() * x.shape[1])  # (B,)
        return torch.stack([self.gain * (inside - 0.4), torch.zeros_like(inside)], 1)  # (B, 2)


def box_map(box: tuple[int, int, int, int], batch: int, size: tuple[int, ...]) -> torch.Tensor:
    """(B, *size): 1 inside the box (in every frame), 0 elsewhere."""
    mask = box_masks(torch.tensor([box]), size[-2:])[0].float()  # (H, W)
    return mask.expand(batch, *size).clone()


def bright_box_images(batch: int, box=BOX) -> torch.Tensor:
    """Dark noisy background, bright object in the box: the blurred baseline loses the object."""
    x = 0.1 * torch.rand(batch, 1, SIZE, SIZE)
    inside = box_map(box, batch, (SIZE, SIZE))[:, None].bool()
    return torch.where(inside, 0.5 + 0.5 * torch.rand_like(x), x)


def oracle_methods(size: tuple[int, ...]):
    return {
        "oracle": lambda _m, x, _t: box_map(BOX, x.shape[0], size),
        "outside": lambda _m, x, _t: box_map(OUTSIDE, x.shape[0], size),
    }


def test_oracle_beats_random_and_points_at_the_box():
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0])
    images = bright_box_images(6)
    boxes = torch.tensor([BOX] * 6, dtype=torch.float32)
    batches = [{"input": images[:4], "boxes": boxes[:4]}, {"input": images[4:], "boxes": boxes[4:]}]
    result = evaluate_explanations(
        model,
        batches,
        methods=("oracle", "outside", "random", "center"),
        steps=12,
        tolerance=0.0,
        custom=oracle_methods((SIZE, SIZE)),
    )
    oracle, outside, random = result["oracle"], result["outside"], result["random"]
    assert oracle["deletion"].mean < random["deletion"].mean - 0.2
    assert oracle["insertion"].mean > random["insertion"].mean + 0.2
    assert oracle["pointing"].mean == 1.0 and oracle["energy"].mean == pytest.approx(1.0)
    assert outside["pointing"].mean == 0.0 and outside["energy"].mean == 0.0
    assert all(s.count == 6 and s.skipped == 0 for row in result.values() for s in row.values())
    assert oracle["pointing"].std == 0.0


def test_foreground_regions_stand_in_for_boxes_on_a_plain_background():
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0])
    images = bright_box_images(5)  # background 0-0.1 (within 10% of the range), object 0.5-1
    assert torch.equal(foreground_regions(images), box_map(BOX, 5, (SIZE, SIZE)).bool())
    result = evaluate_explanations(
        model,
        [{"input": images}],  # no boxes
        methods=("oracle", "outside"),
        metrics=("pointing", "energy"),
        tolerance=0.0,
        custom=oracle_methods((SIZE, SIZE)),
        regions="foreground",
    )
    assert result["oracle"]["pointing"].mean == 1.0 and result["oracle"]["energy"].mean == pytest.approx(1.0)
    assert result["outside"]["pointing"].mean == 0.0 and result["outside"]["energy"].mean == 0.0
    with_boxes = evaluate_explanations(model, [{"input": images}], methods=("random",), metrics=("energy",))
    assert with_boxes["random"]["energy"].note.startswith("the data has no object boxes")
    with pytest.raises(ConfigError, match="regions"):
        evaluate_explanations(model, [{"input": images}], methods=("random",), regions="masks")


def test_foreground_regions_of_a_video_follow_the_object_per_frame():
    video = torch.full((1, 3, 2, 6, 6), 0.2)  # (B, C, T, H, W), grey background
    video[0, :, 0, 1:3, 1:3] = 0.9  # frame 0: object top left
    video[0, 2, 1, 4:6, 3:5] = 0.0  # frame 1: object bottom right, only its blue channel differs
    expected = torch.zeros(1, 2, 6, 6, dtype=torch.bool)
    expected[0, 0, 1:3, 1:3] = True
    expected[0, 1, 4:6, 3:5] = True
    assert torch.equal(foreground_regions(video), expected)
    with pytest.raises(InputError, match="images"):
        foreground_regions(torch.rand(2, 3, 16))


def test_limit_counts_examples_across_batches_and_random_is_seeded():
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0])
    batches = [{"input": bright_box_images(4)} for _ in range(3)]
    kwargs = dict(methods=("random",), metrics=("deletion",), steps=4, limit=6, batch_size=3)
    first = evaluate_explanations(model, batches, **kwargs)
    again = evaluate_explanations(model, batches, **kwargs)
    assert first["random"]["deletion"].count == 6
    assert first == again
    other = evaluate_explanations(model, batches, **kwargs | {"seed": 1})
    assert other["random"]["deletion"].mean != first["random"]["deletion"].mean


def test_video_localisation_is_per_visible_frame():
    frames, batch = 4, 3
    size = (frames, SIZE, SIZE)
    model = BoxScorer(box_map(BOX, 1, size)[0])
    video = bright_box_images(batch * frames).view(batch, frames, 1, SIZE, SIZE).transpose(1, 2)
    video = video.expand(-1, 3, -1, -1, -1).contiguous()  # (B, 3, T, H, W)
    boxes = torch.zeros(batch, frames, 2, 4)  # the actions dataset's layout: (B, T, objects, 4)
    boxes[:, :, 0] = torch.tensor(BOX, dtype=torch.float32)
    boxes[:, :, 1] = torch.tensor(OUTSIDE, dtype=torch.float32)
    visible = torch.zeros(batch, frames, 2, dtype=torch.bool)
    visible[:, :3, 0] = True  # object 0 hidden in the last frame; object 1 (OUTSIDE) never visible
    visible[0] = False  # example 0 shows no object at all
    regions = box_regions(boxes, visible, size)
    assert regions.shape == (batch, *size) and not regions[:, 3].any() and not regions[0].any()
    assert regions[1, :3, 3:7, 2:6].all() and regions[1, :3].sum() == 3 * 16
    result = evaluate_explanations(
        model,
        [{"input": video, "boxes": boxes, "box_visible": visible}],
        methods=("oracle", "outside", "random"),
        steps=8,
        tolerance=0.0,
        custom=oracle_methods(size),
    )
    for method, expected in (("oracle", 1.0), ("outside", 0.0)):
        for metric in ("pointing", "energy"):
            score = result[method][metric]
            assert (score.mean, score.count, score.skipped) == (pytest.approx(expected), 2, 1), method
    assert result["oracle"]["deletion"].mean < result["random"]["deletion"].mean
    assert result["oracle"]["deletion"].count == batch


def test_methods_that_do_not_apply_are_reported_not_raised():
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0])
    result = evaluate_explanations(model, [{"input": bright_box_images(2)}], steps=2)
    assert set(result) == set(METHODS)
    for method in ("abn", "gradcam", "gradcam++", "hirescam", "layercam", "guided-gradcam", "rollout"):
        assert all(not s.applicable and s.count == 0 for s in result[method].values()), method
    assert "feature maps" in result["gradcam"]["deletion"].note
    assert "self-attention" in result["relevance"]["insertion"].note
    assert "attention map" in result["abn"]["deletion"].note
    for method in ("random", "center"):
        assert result[method]["deletion"].count == 2
        assert "boxes" in result[method]["pointing"].note  # no boxes in the data
    table = markdown_table(result)
    assert table.count("\n| ") == len(METHODS) + 1 and "| rollout | n/a | n/a | n/a | n/a | 0 |" in table
    assert "pointing (every method), energy (every method)" in table


def test_plain_resnet_has_cams_but_no_attention():
    model = ResNet(ResNetConfig(depth=8, in_chans=1, num_classes=3))
    result = evaluate_explanations(
        model,
        [{"input": torch.randn(2, 1, 16, 16), "label": torch.tensor([0, 2])}],
        methods=("abn", "gradcam", "guided-gradcam", "rollout"),
        metrics=("deletion",),
        targets="label",
        steps=2,
    )
    assert not result["abn"]["deletion"].applicable and not result["rollout"]["deletion"].applicable
    assert result["gradcam"]["deletion"].count == 2 and result["guided-gradcam"]["deletion"].count == 2


def test_bad_names_and_inputs_are_one_line_errors():
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0])
    batches = [{"input": bright_box_images(2)}]
    with pytest.raises(ConfigError, match="did you mean 'gradcam'"):
        evaluate_explanations(model, batches, methods=("gradcan",))
    with pytest.raises(ConfigError, match="unknown explanation metric"):
        evaluate_explanations(model, batches, metrics=("auc",))
    with pytest.raises(ConfigError, match="unknown baseline"):
        evaluate_explanations(model, batches, deletion_baseline="black")
    with pytest.raises(ConfigError, match="unknown module"):
        evaluate_explanations(model, batches, methods=("gradcam",), layer="nope")
    with pytest.raises(InputError, match="token ids"):
        evaluate_explanations(model, [{"input": torch.zeros(2, 5, dtype=torch.long)}])
    with pytest.raises(InputError, match="'label'"):
        evaluate_explanations(model, batches, methods=("center",), metrics=("deletion",), targets="label")
    boxed = {"input": bright_box_images(2), "boxes": torch.tensor([BOX] * 2, dtype=torch.float32)}
    only_energy = dict(methods=("center",), metrics=("energy",), batch_size=2)
    with pytest.raises(InputError, match="'boxes' in every batch"):
        evaluate_explanations(model, [boxed, *batches], **only_energy)


def test_default_cam_layer_is_the_last_child_with_feature_maps():
    abn = AttentionBranchNetwork(ABNConfig(depth=8, in_chans=1, num_classes=3))
    assert default_cam_layer(abn, torch.randn(1, 1, 16, 16)) == "perception_stage"
    resnet = ResNet(ResNetConfig(depth=8, in_chans=1, num_classes=3))
    assert default_cam_layer(resnet, torch.randn(1, 1, 16, 16)) == "stages.2"  # inside a ModuleList
    st_abn = STABN(tiny_st_abn())
    assert default_cam_layer(st_abn, torch.rand(1, 3, 4, 16, 16)) == "perception_stage"
    vit = VisionTransformer(tiny_vit())
    assert default_cam_layer(vit, torch.randn(1, 1, 8, 8)) == "patch_embed"
    with pytest.raises(ConfigError, match="layer="):
        default_cam_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.randn(1, 1, 2, 2))
    assert not any(m._forward_hooks for m in abn.modules())


def tiny_st_abn() -> STABNConfig:
    return STABNConfig(num_classes=3, depth=10, width=4, num_frames=4, stem_pool=False, temporal_hidden=8)


def tiny_vit() -> ViTConfig:
    return ViTConfig(image_size=8, patch_size=2, in_chans=1, num_classes=3, dim=8, depth=2, num_heads=2)


def test_abn_maps_of_abn_and_st_abn():
    abn = AttentionBranchNetwork(ABNConfig(depth=8, in_chans=1, num_classes=3)).eval()
    x = torch.randn(2, 1, 16, 16)
    maps = explanation_maps(abn, x, methods=("abn",))["abn"]
    assert isinstance(maps, torch.Tensor) and maps.shape == (2, 16, 16)
    with torch.no_grad():
        assert torch.allclose(maps, upsample(abn(x).attention[:, 0], (16, 16)))
    st_abn = STABN(tiny_st_abn()).eval()
    video = torch.rand(2, 3, 4, 16, 16)
    maps = explanation_maps(st_abn, video, methods=("abn", "gradcam"))
    with torch.no_grad():
        out = st_abn(video)
    expected = upsample(out.spatial, (4, 16, 16)) * out.temporal[:, :, None, None]
    assert torch.allclose(maps["abn"], expected)
    assert maps["gradcam"].shape == (2, 4, 16, 16)


def test_vit_rollout_maps_patches_back_to_pixels():
    vit = VisionTransformer(tiny_vit()).eval()
    x = torch.randn(2, 1, 8, 8)
    maps = explanation_maps(vit, x, methods=("rollout", "relevance", "gradcam", "guided-gradcam"))
    assert maps["rollout"].shape == maps["relevance"].shape == maps["gradcam"].shape == (2, 8, 8)
    cls_row = attention_rollout(vit, x)[:, 0, 1:].reshape(2, 4, 4)  # 4x4 patches after [CLS]
    assert torch.allclose(maps["rollout"], upsample(cls_row, (8, 8)))
    assert "nn.ReLU" in maps["guided-gradcam"]  # GELU only: reported, not raised


def test_center_map_peaks_in_the_middle():
    maps = center_maps(2, (3, 9, 7))
    assert maps.shape == (2, 3, 9, 7) and torch.equal(maps[0, 0], maps[1, 2])
    assert maps[0, 0].argmax() == 4 * 7 + 3


def test_score_summary():
    score = Score.of(torch.tensor([1.0, 3.0, math.nan]))
    assert (score.mean, score.std, score.count, score.skipped) == (2.0, pytest.approx(math.sqrt(2)), 2, 1)
    assert Score.not_applicable("why").as_dict() == {
        "mean": None,
        "std": None,
        "count": 0,
        "skipped": 0,
        "note": "why",
        "failed": False,
    }


class HugeLogits(nn.Module):
    """conv features -> linear; every logit shifted by ``shift`` (predictions and gradients unchanged)."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
        nn.init.constant_(self.head[1].bias, shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_a_failing_method_is_recorded_and_the_others_are_scored():
    model = HugeLogits(150.0)  # exp(150) overflows float32 (max ~3.4e38), not float64 (max ~1.8e308)
    batches = [{"input": torch.rand(3, 1, 8, 8)}]
    methods = ("gradcam", "gradcam++", "center")
    result = evaluate_explanations(model, batches, methods=methods, metrics=("deletion",), steps=2)
    failed = result["gradcam++"]["deletion"]
    assert failed.failed and failed.count == 0 and "overflows torch.float32" in failed.note
    assert "\n" not in failed.note
    assert result["gradcam"]["deletion"].count == 3 and result["center"]["deletion"].count == 3
    assert not result["gradcam"]["deletion"].failed
    table = markdown_table(result)
    assert "| gradcam++ | failed | 0 |" in table
    assert "- failed for gradcam++: Grad-CAM++ uses exp(score)" in table

    wide = evaluate_explanations(
        model.double(),
        [{"input": batches[0]["input"].double()}],
        methods=methods,
        metrics=("deletion", "pointing"),
        steps=2,
    )
    assert wide["gradcam++"]["deletion"].count == 3 and not wide["gradcam++"]["deletion"].failed
    assert math.isfinite(wide["gradcam++"]["deletion"].mean)


def test_float64_maps_beyond_float32_are_scored_as_their_scaled_selves():
    x = bright_box_images(2)
    model = BoxScorer(box_map(BOX, 1, (SIZE, SIZE))[0]).double()
    oracle = box_map(BOX, 2, (SIZE, SIZE)).double()
    custom = {"huge": lambda _m, _x, _t: oracle * 1e300, "unit": lambda _m, _x, _t: oracle}
    boxes = torch.tensor([BOX] * 2, dtype=torch.float32)
    result = evaluate_explanations(
        model, [{"input": x.double(), "boxes": boxes}], methods=("huge", "unit"), custom=custom, steps=4
    )
    for metric in ("deletion", "insertion", "pointing", "energy"):
        assert result["huge"][metric] == result["unit"][metric], metric
