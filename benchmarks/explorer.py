"""How fast the explorer answers (issue 26): the runs table over generated run folders.

    python -m benchmarks.explorer                 # 1,000 runs
    python -m benchmarks.explorer --runs 5000

Target: the runs table of 1,000 runs served in under 1 s. "cold" builds a new app for every
request (nothing cached: every run.json, config.yaml and metrics.json is read and parsed);
"warm" asks the same app again (summaries cached by the files' modification times, the folder
still walked). Also one run's page and its curves (a run with 10,000 logged points), and, on a
small model (an ABN ResNet-8 on Fashion-MNIST trained for two steps: the cost does not depend on
the training), the attention of one test image and a Grad-CAM map on request (target: under
200 ms), the run already loaded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
import yaml
from fastapi.testclient import TestClient
from torch.utils.tensorboard import SummaryWriter

from attnlab.cli import main as attnlab
from attnlab.explorer.app import create_app
from benchmarks.harness import device_info, measure, report


def make_runs(root: Path, count: int) -> None:
    """``count`` run folders as attnlab writes them (run.json, config.yaml, metrics.json, report)."""
    config = yaml.safe_load((Path(__file__).parents[1] / "src/attnlab/recipes/demo.yaml").read_text())
    config_text = yaml.safe_dump(config)
    for i in range(count):
        folder = root / f"recipe{i % 20}" / f"20261204-{i:06d}-seed0"
        (folder / "figures").mkdir(parents=True)
        state = {
            "recipe": f"recipe{i % 20}",
            "started": f"2026-12-04 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
        }
        (folder / "run.json").write_text(json.dumps(state | {"state": "finished", "train_seconds": 10.0 + i}))
        (folder / "config.yaml").write_text(config_text)
        (folder / "metrics.json").write_text(json.dumps({"test/acc": i / count, "test/loss": 1 - i / count}))
        (folder / "report.md").write_text("# run\n\n![curves](figures/curves.png)\n")
    writer = SummaryWriter(str(root / "recipe0" / "20261204-000000-seed0" / "tb"))
    for step in range(10_000):
        writer.add_scalar("train/loss", 1.0 / (1 + step), step)
    writer.close()


def train_small_abn(root: Path) -> str:
    """A finished ABN run (ResNet-8, two steps) in ``root``; its run id."""
    quick = ["--trainer.max_steps", "2", "--trainer.val_every", "2", "--trainer.progress_bar", "false"]
    quick += ["--model.depth", "8", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]
    code = attnlab(["run", "abn-fashion_mnist", "--run-dir", str(root / "abn"), *quick])
    assert code == 0, "the ABN run for the attention timing did not finish"
    return "abn"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/explorer.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_runs(root, args.runs)
        abn = {"id": train_small_abn(root), "index": "3"}
        warm = TestClient(create_app(root))
        one = {"id": "recipe0/20261204-000000-seed0"}

        def get(client: TestClient, path: str, params: dict[str, str] | None = None) -> object:
            response = client.get(path, params=params)
            assert response.status_code == 200, response.text
            return response.json()

        assert len(get(warm, "/api/runs")["runs"]) == args.runs + 1  # type: ignore[index]
        get(warm, "/api/view", abn)  # loads the run once, as the page's first look does
        variants = {
            "runs table, cold": lambda: get(TestClient(create_app(root)), "/api/runs"),
            "runs table, warm": lambda: get(warm, "/api/runs"),
            "one run's page": lambda: get(warm, "/api/run", one),
            "its curves (10,000 points)": lambda: get(warm, "/api/curves", one),
            "attention of one image (ABN ResNet-8)": lambda: get(warm, "/api/view", abn),
            "Grad-CAM of one image on request": lambda: get(warm, "/api/view", abn | {"method": "gradcam"}),
        }
        results = measure(
            f"{args.runs} runs",
            variants,
            baseline="runs table, cold",
            device=torch.device("cpu"),
            repeats=args.repeats,
            warmup=1,
        )
    report("Explorer: time to answer", results, device_info(torch.device("cpu")), args.out)


if __name__ == "__main__":
    main()
