"""The attentive probe (``attnlab.layers.pooling.AttentiveClassifier``) against the official
V-JEPA ``AttentiveClassifier`` at depth 1 and 2 (``vjepa_attentive_probe_golden.pt``): loaded
through :func:`attnlab.runs.official.load_official_attentive_probe`; pooled features and logits
at atol 1e-5 (official fp32-vs-fp64 spread 1e-6), cross-entropy at 1e-6."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import InputError
from attnlab.layers.pooling import AttentiveClassifier
from attnlab.runs.official import load_official_attentive_probe
from tests.models.vjepa._reference import load


@pytest.mark.parametrize("depth", [1, 2])
def test_probe_matches_the_official_classifier(depth: int, tmp_path: Path):
    golden = load("vjepa_attentive_probe_golden.pt")[f"depth{depth}"]
    path = tmp_path / "probe.pt"
    torch.save({"classifier": {f"module.{k}": v for k, v in golden["state_dict"].items()}}, path)
    probe = AttentiveClassifier(
        64, num_classes=5, num_heads=4, depth=depth, self_attn_on="queries", cross_out_proj=False
    )
    load_official_attentive_probe(probe, path).eval()
    with torch.no_grad():
        pooled = probe.pooler(golden["input"])  # (3, 1, 64)
        logits = probe(golden["input"])
    torch.testing.assert_close(pooled, golden["pooled"], atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, golden["logits"], atol=1e-5, rtol=0)
    ce = F.cross_entropy(logits, golden["labels"])
    torch.testing.assert_close(ce, golden["ce_loss"], atol=1e-6, rtol=0)


def test_the_vjepa2_order_does_not_match_at_depth_2(tmp_path: Path):
    """Self-attention on the tokens (attnlab's default) is another model: the golden tells them apart."""
    golden = load("vjepa_attentive_probe_golden.pt")["depth2"]
    path = tmp_path / "probe.pt"
    torch.save(golden["state_dict"], path)
    probe = AttentiveClassifier(64, num_classes=5, num_heads=4, depth=2, cross_out_proj=False)
    load_official_attentive_probe(probe, path)
    with torch.no_grad():
        assert (probe.eval()(golden["input"]) - golden["logits"]).abs().max() > 1e-3


def test_a_probe_of_another_shape_is_one_line(tmp_path: Path):
    golden = load("vjepa_attentive_probe_golden.pt")["depth2"]
    path = tmp_path / "probe.pt"
    torch.save(golden["state_dict"], path)
    with pytest.raises(InputError, match=r"unexpected keys .*pooler\.blocks\.0"):
        probe = AttentiveClassifier(64, num_classes=5, num_heads=4, depth=1, cross_out_proj=False)
        load_official_attentive_probe(probe, path)


def test_the_output_projection_is_what_the_official_probe_lacks(tmp_path: Path):
    """With attnlab's default (projection applied) the loader finds no weights for it: one line."""
    golden = load("vjepa_attentive_probe_golden.pt")["depth1"]
    path = tmp_path / "probe.pt"
    torch.save(golden["state_dict"], path)
    with pytest.raises(InputError, match=r"missing keys .*pooler\.cross_block\.attn\.proj"):
        load_official_attentive_probe(AttentiveClassifier(64, num_classes=5, num_heads=4), path)
