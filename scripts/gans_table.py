"""docs/gans.md's 3-seed table from the runs of scripts/gans_runs.sh.

    python scripts/gans_table.py RUNS_DIR

Runs are named ``<row>-s<seed>`` (dcgan, dcgan_sn, madgan, ktg_recipe, ktg_best, madgan_ema);
every finished seed counts. IS-like and FID-like of the test split, mean ± sd over seeds, with the
floors (untrained generators, k = 1 and k = 3) and the real held-out images measured in the same
runs, then each k = 3 row's generators one by one.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

ROWS = {
    "dcgan": "DCGAN",
    "dcgan_sn": "DCGAN + SN",
    "madgan": "MAD-GAN (k = 3, SN)",
    "madgan_ema": "MAD-GAN (k = 3, SN), EMA generators",
    "ktg_recipe": "KTG, the recipe's hand-set graph",
    "ktg_best": "KTG, the searched graph",
}


def spread(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def row(name: str, runs: list[dict[str, float]], prefix: str = "") -> str:
    is_like = [r[f"test/{prefix}is_like"] for r in runs]
    fid_like = [r[f"test/{prefix}fid_like"] for r in runs]
    return f"| {name} | {len(runs)} | {spread(is_like, 2)} | {spread(fid_like, 2)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path)
    root = parser.parse_args().runs
    found: dict[str, list[dict[str, float]]] = {name: [] for name in ROWS}
    for run in sorted(root.iterdir()):
        match = re.fullmatch(r"([a-z_]+)-s(\d+)", run.name)
        if match and match[1] in ROWS and (run / "metrics.json").is_file():
            found[match[1]].append(json.loads((run / "metrics.json").read_text()))
    if not found["dcgan"] or not found["madgan"]:
        raise SystemExit(f"no finished dcgan-s<seed> and madgan-s<seed> runs under {root}")
    print("| row | seeds | IS-like | FID-like |\n| --- | ---: | ---: | ---: |")
    print(row("real held-out test images (ceiling)", found["dcgan"], "data/"))
    print(row("floor: untrained generator, k = 1", found["dcgan"], "floor/"))
    print(row("floor: untrained generators, k = 3", found["madgan"], "floor/"))
    for name, runs in found.items():
        if runs:
            print(row(ROWS[name], runs))
    print("\nEach generator of the k = 3 rows (mean ± sd over seeds):\n")
    print("| row | G0 IS-like / FID-like | G1 | G2 |\n| --- | --- | --- | --- |")
    for name, runs in found.items():
        if runs and "test/g0/is_like" in runs[0]:
            cells = [
                f"{spread([r[f'test/g{i}/is_like'] for r in runs], 2)} / "
                f"{spread([r[f'test/g{i}/fid_like'] for r in runs], 1)}"
                for i in range(3)
            ]
            print(f"| {ROWS[name]} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
