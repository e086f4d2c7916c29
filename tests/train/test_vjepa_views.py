"""Evaluation views of the V-JEPA probes: averaging over views (hand-computed), shifted crops and
still clips (hand-made tensors), one view being exactly the single-clip path, and the task's
probe accuracies with several views equal to the mean of per-view logits computed here."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.models import create_model
from attnlab.runs.config import OptimConfig
from attnlab.train.vjepa import VJEPATask
from attnlab.train.vjepa_probe import ProbeConfig, across_segments, average_views, extract, fit_probe
from attnlab.train.vjepa_views import evaluation_views, repeat_image, shifted_views, still_clips


def test_average_views_by_hand():
    logits = torch.tensor([[[0.0, 0.0, 3.0], [5.0, 4.0, 0.0]]])  # (B=1, V=2, K=3)
    assert torch.equal(average_views(logits, "logits"), torch.tensor([[2.5, 2.0, 1.5]]))
    e = math.exp
    first = [1 / (2 + e(3)), 1 / (2 + e(3)), e(3) / (2 + e(3))]
    second = [e(5) / (e(5) + e(4) + 1), e(4) / (e(5) + e(4) + 1), 1 / (e(5) + e(4) + 1)]
    expect = torch.tensor([[(a + b) / 2 for a, b in zip(first, second, strict=True)]])
    torch.testing.assert_close(average_views(logits, "softmax"), expect, rtol=0, atol=1e-7)
    # the two averages pick different classes here (0.386 / 0.156 / 0.457 against 2.5 / 2 / 1.5)
    assert average_views(logits, "softmax").argmax(-1).item() == 2
    assert average_views(logits, "logits").argmax(-1).item() == 0
    one = torch.randn(4, 1, 5)
    assert torch.equal(average_views(one, "softmax"), one[:, 0])  # one view: the logits as they are


def test_shifted_views_by_hand():
    clip = torch.arange(4.0).view(1, 1, 1, 1, 4).expand(1, 1, 2, 3, 4)  # columns 0 1 2 3
    views = shifted_views(clip, num_views=3, shift=1)
    assert views.shape == (1, 3, 1, 2, 3, 4)
    rows = [views[0, v, 0, 1, 2].tolist() for v in range(3)]
    assert rows == [[0.0, 0.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 3.0]]
    assert torch.equal(shifted_views(clip, 1, 1)[:, 0], clip)


def test_evaluation_views_compose_data_views_and_shifts():
    clips = torch.randn(2, 1, 2, 4, 4)
    assert torch.equal(evaluation_views({"input": clips}, 1, 2)[:, 0], clips)
    data_views = torch.randn(2, 3, 1, 2, 4, 4)
    views = evaluation_views({"input": clips, "views": data_views}, 3, 1)
    assert views.shape == (2, 9, 1, 2, 4, 4)
    assert torch.equal(views[:, 1::3], data_views)  # each data view's middle crop is itself


def test_still_clips_repeat_one_frame():
    images = torch.randn(2, 3, 4, 4)
    clips = repeat_image(images, 6)
    assert clips.shape == (2, 3, 6, 4, 4) and all(torch.equal(clips[:, :, t], images) for t in range(6))
    video = torch.randn(2, 3, 4, 8, 8)
    still = still_clips(video, 2)
    assert still.shape == video.shape and all(torch.equal(still[:, :, t], video[:, :, 2]) for t in range(4))
    with pytest.raises(ConfigError, match="image_frame=4 is outside the clip's 4 frames"):
        still_clips(video, 4)


def test_probe_config_checks_view_options():
    with pytest.raises(ConfigError, match="num_views >= 1"):
        ProbeConfig(num_views=0).check()
    with pytest.raises(ConfigError, match="average 'softmax' or 'logits'"):
        ProbeConfig(average="max").check()  # type: ignore[arg-type]


def probed_task(clips: torch.Tensor, **probe: object) -> VJEPATask:
    """A tiny task with fitted probes on its target encoder (as on_test_start leaves them), their
    logits centred on the features of ``clips``."""
    model = create_model("vjepa-tiny-mfmnist", depth=1, pred_depth=1, dim=32, pred_dim=16).eval()
    task = VJEPATask(model=model, optim=OptimConfig(name="adamw"), probe={"steps": 2, **probe})
    encoder = model.target_encoder
    feats = encoder(clips).detach()
    task._encoders = {"probe": encoder}
    for kind in ("attentive", "average"):
        probe = fit_probe(kind, feats, torch.arange(len(clips)) % 8, 8, task.probe_config, seed=1)
        with torch.no_grad():  # logits centred on these clips, so that predictions differ between them
            probe.linear.bias.sub_(probe(feats).mean(0))
        task._probes[("probe", kind, "motion")] = probe
    return task


def test_one_view_is_the_single_clip_path_and_views_average_logits():
    torch.manual_seed(1)
    batch = {"input": torch.randn(16, 1, 8, 48, 48), "motion": torch.randint(0, 8, (16,))}
    task = probed_task(batch["input"])
    encoder = task._encoders["probe"]
    with torch.no_grad():
        acc = task._probe_accuracies(batch)
        for kind in ("attentive", "average"):
            probe = task._probes[("probe", kind, "motion")]
            hits = probe(encoder(batch["input"])).argmax(-1) == batch["motion"]  # the path before views
            assert torch.equal(acc[f"probe/{kind}/motion_acc"], hits.float().mean())
    task = probed_task(batch["input"], num_views=3, view_shift=4, average="logits")
    task._encoders["probe"] = encoder
    x = batch["input"]
    padded = torch.cat([x[..., :1]] * 4 + [x] + [x[..., -1:]] * 4, dim=-1)  # edges repeated, by hand
    crops = [padded[..., o : o + 48] for o in (0, 4, 8)]  # left, centre, right
    with torch.no_grad():
        for kind in ("attentive", "average"):
            probe = task._probes[("probe", kind, "motion")]
            mean = sum(probe(encoder(c)) for c in crops) / 3  # (B, K)
            # labels that only the mean of the three crops' logits gets all right
            labels = {"motion": mean.argmax(-1)}
            centre = probe(encoder(x)).argmax(-1)
            assert not torch.equal(centre, labels["motion"])  # the views change some predictions
            acc = task._probe_accuracies(batch | labels)[f"probe/{kind}/motion_acc"]
            assert acc.item() == 1.0


def test_across_segments_by_hand():
    # value = 100 * segment + 10 * spatial view + token, views segment-major: (s0 v0, s0 v1, s1 v0, s1 v1)
    feats = torch.tensor([[100.0 * s + 10 * v + n for n in range(2)] for s in range(2) for v in range(2)])
    out = across_segments(feats.view(1, 4, 2, 1), segments=2)
    assert out.shape == (1, 2, 4, 1)
    assert out[0, :, :, 0].tolist() == [[0, 1, 100, 101], [10, 11, 110, 111]]
    assert torch.equal(across_segments(feats.view(1, 4, 2, 1), 1), feats.view(1, 4, 2, 1))


def test_probes_attend_across_segments_as_computed_here():
    """With attend_across_segments, a probe is fitted on the tokens of each sample's segments one
    after another, and tested on each spatial view's segments, softmax averaged over spatial views."""
    torch.manual_seed(2)
    segments = torch.randn(8, 2, 1, 8, 48, 48)  # (B, 2 segments, C, T, H, W)
    views = torch.randn(8, 2, 3, 1, 8, 48, 48)  # 2 segments x 3 crops
    views[:, :, 1] = segments  # the middle crop of each segment is the centre crop
    batch = {"input": segments[:, 0], "views": views.flatten(1, 2), "segments": segments}
    model = create_model("vjepa-tiny-mfmnist", depth=1, pred_depth=1, dim=32, pred_dim=16).eval()
    encoder = model.target_encoder
    with torch.no_grad():
        feats, _ = extract(encoder, [batch], [], torch.device("cpu"), segments=True)
        by_hand = torch.cat([encoder(segments[:, 0]), encoder(segments[:, 1])], dim=1)  # (B, 2N, D)
    torch.testing.assert_close(feats, by_hand, rtol=0, atol=0)
    task = probed_task(batch["input"], attend_across_segments=True)
    task._encoders["probe"] = encoder
    with torch.no_grad():
        for kind in ("attentive", "average"):
            probe = task._probes[("probe", kind, "motion")]
            crops = [torch.cat([encoder(views[:, s, c]) for s in range(2)], dim=1) for c in range(3)]
            # 2 fitting steps leave near-uniform predictions: spread them, centred on these samples
            probe.linear.weight.mul_(10_000)
            probe.linear.bias.sub_(torch.stack([probe(tokens) for tokens in crops]).mean((0, 1)))
            mean = sum(probe(tokens).softmax(-1) for tokens in crops) / 3  # (B, K)
            labels = {"motion": mean.argmax(-1)}
            # grouping the other way (each segment's crops together) predicts otherwise
            wrong = [torch.cat([encoder(views[:, s, c]) for c in range(3)], dim=1) for s in range(2)]
            assert not torch.equal(sum(probe(t).softmax(-1) for t in wrong).argmax(-1), labels["motion"])
            acc = task._probe_accuracies(batch | labels)[f"probe/{kind}/motion_acc"]
            assert acc.item() == 1.0
