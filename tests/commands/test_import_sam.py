"""`attnlab import sam-official CKPT`: an official SAM checkpoint, its architecture read from its
shapes, as a tested run folder (the small official-code model of shared/reference/sam)."""

import json
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.errors import InputError
from attnlab.runs.official import official_sam_preset
from tests import _goldens

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_TEST = ["--data.test_size", "4", "--data.val_size", "4", "--data.eval_batch_size", "4"]


def test_the_command_offers_every_importable_checkpoint():
    from attnlab.cli import IMPORTABLE_NAMES
    from attnlab.commands.import_official import IMPORTABLE

    assert sorted(IMPORTABLE_NAMES) == sorted(IMPORTABLE)


def test_import_writes_a_tested_run_holding_the_official_weights(tmp_path: Path):
    checkpoint = _goldens.reference("sam") / "sam_small_state_dict.pt"
    run = tmp_path / "sam"
    assert main(["import", "sam-official", str(checkpoint), "--run-dir", str(run), *SMALL_TEST]) == 0
    assert "name: sam-small-reference" in (run / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test/miou_f0", "test/box_miou_f0.4", "test/iter_miou_f0.4"} <= set(metrics)
    from safetensors.torch import load_file

    saved, official = load_file(run / "model.safetensors"), torch.load(checkpoint, weights_only=True)
    assert set(official) <= set(saved)
    for key, value in official.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0, msg=key)


def _save_shapes(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A checkpoint with those names and shapes that holds one number per tensor (stride-0 views)."""
    torch.save({k: torch.zeros(1).expand(s) if s else torch.zeros(()) for k, s in shapes.items()}, path)
    return path


def test_the_vit_b_layout_is_recognised_and_a_foreign_one_is_one_line(tmp_path: Path):
    shapes = _goldens.key_shapes("sam", "sam_vit_b_state_dict_keys.txt")
    assert official_sam_preset(_save_shapes(tmp_path / "b.pth", shapes)) == "sam-vit-b"
    shapes["image_encoder.pos_embed"] = (1, 64, 64, 640)
    with pytest.raises(InputError, match=r"no SAM preset .* has this checkpoint's parameters"):
        official_sam_preset(_save_shapes(tmp_path / "odd.pth", shapes))
    with pytest.raises(InputError, match="is not a SAM checkpoint"):
        official_sam_preset(_save_shapes(tmp_path / "other.pth", {"encoder.weight": (3, 3)}))


def test_a_foreign_checkpoint_is_one_line_at_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = _save_shapes(tmp_path / "other.pth", {"encoder.weight": (3, 3)})
    assert main(["import", "sam-official", str(path), "--run-dir", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert "is not a SAM checkpoint" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
