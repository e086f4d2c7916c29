"""`attnlab import vimon-official CKPT`: the authors' checkpoint as a tested run folder."""

import json
from pathlib import Path

import pytest
import torch

from attnlab.cli import main
from attnlab.runs.official import load_official_vimon
from tests.models.object_centric.test_vimon_reference import REFERENCE, needs_reference

pytestmark = [needs_reference, pytest.mark.usefixtures("one_thread")]

# 8 test clips of 10 frames at 64x64: the checkpoint's size, a few seconds on one thread
SMALL_TEST = ["--data.test_size", "8", "--data.eval_batch_size", "8", "--data.val_size", "8"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("import") / "vimon"
    code = main(
        [
            "import",
            "vimon-official",
            str(REFERENCE / "ckpt_vimon_vmds.pt"),
            "--run-dir",
            str(run),
            *SMALL_TEST,
        ]
    )
    assert code == 0
    return run


def test_import_writes_a_finished_tested_run_with_the_checkpoints_weights(imported: Path):
    for name in ("config.yaml", "run.json", "model.safetensors", "metrics.json", "report.md"):
        assert (imported / name).is_file(), name
    assert (imported / "figures/decomposition.png").is_file()
    assert json.loads((imported / "run.json").read_text())["state"] == "finished"
    metrics = json.loads((imported / "metrics.json").read_text())
    # a trained ViMON separates the sprites: far above the one-slot FG-ARI (about 0.2)
    assert metrics["test/fg_ari"] > 0.5
    assert metrics["test/mota"] > 30
    from safetensors.torch import load_file

    saved = load_file(imported / "model.safetensors")
    official = load_official_vimon(REFERENCE / "ckpt_vimon_vmds.pt").state_dict()
    assert saved.keys() == official.keys()
    for key, value in official.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0, msg=key)
    assert "num_slots: 6" in (imported / "config.yaml").read_text()


def test_evaluate_takes_the_imported_run_and_gives_the_same_metrics(imported: Path, capsys):
    assert main(["evaluate", str(imported)]) == 0
    again = json.loads(next((imported / "evaluations").glob("final-*.json")).read_text())
    first = json.loads((imported / "metrics.json").read_text())
    assert again == pytest.approx(first, rel=1e-5)


def test_a_file_that_is_not_the_checkpoint_is_one_line_and_leaves_no_folder(tmp_path: Path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save({"something": torch.zeros(2)}, bad)
    run = tmp_path / "run"
    assert main(["import", "vimon-official", str(bad), "--run-dir", str(run), *SMALL_TEST]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error:") and "\n" not in err
    assert not run.exists()
