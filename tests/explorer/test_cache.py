"""The explorer keeps what it built from a run (a loaded model) until the run's weights change, for
the few runs used last only."""

import os
from pathlib import Path

from attnlab.explorer.cache import RunCache


def test_a_run_is_built_again_only_when_its_weights_change_and_old_runs_are_dropped(tmp_path: Path):
    built: list[str] = []

    def build(folder: Path) -> str:
        built.append(folder.name)
        return f"{folder.name}#{len(built)}"

    runs = []
    for name in "abc":
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"w")
        runs.append(tmp_path / name)
    cache = RunCache(build, size=2)
    a, b, c = runs
    assert cache.get(a) == "a#1" and cache.get(a) == "a#1"  # kept
    weights = a / "model.safetensors"
    os.utime(weights, (weights.stat().st_atime, weights.stat().st_mtime + 10))  # new weights
    assert cache.get(a) == "a#2"
    cache.get(b)
    cache.get(c)  # a, the least recently used, is dropped
    assert cache.get(b) == "b#3" and cache.get(a) == "a#5"
    (b / "model.safetensors").unlink()  # no weights: nothing to keep
    assert cache.get(b) == "b#6" and cache.get(b) == "b#7"
