"""scripts/vmds_references.py: the reference rows of docs/object_centric.md, counted another way."""

import runpy
from pathlib import Path

import pytest
import torch

from attnlab.data.sprites import VMDSData

SCRIPT = Path(__file__).parents[2] / "scripts" / "vmds_references.py"


def test_references_match_a_direct_count(one_thread):
    mse, one_slot_ari = runpy.run_path(str(SCRIPT))["references"](seed=3, test_size=6)
    clips = VMDSData(seed=3, test_size=6).build("test")
    # sprites visible in each frame; one slot for everything is a perfect partition only with one
    visible = [len(set(frame.unique().tolist()) - {0}) for clip in clips for frame in clip["segmentation"]]
    assert 1 in visible and max(visible) > 1  # both cases occur
    with_foreground = [n for n in visible if n > 0]
    assert one_slot_ari == pytest.approx(sum(n == 1 for n in with_foreground) / len(with_foreground))
    squares = torch.cat([clip["video"].flatten() for clip in clips]).double().square()
    assert mse == pytest.approx(squares.mean().item(), rel=1e-5)
