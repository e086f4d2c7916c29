"""Under CI=true a skipped test fails (tests/conftest.py), so missing data cannot turn CI green."""

import os
import subprocess
import sys
from pathlib import Path


def _pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    probe = "import pytest\n\ndef test_probe():\n    pytest.skip('no data')\n"
    (tmp_path / "test_probe.py").write_text(probe)
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1],
    )  # fmt: skip


def test_a_skip_fails_under_ci(tmp_path: Path):
    result = _pytest(tmp_path, "true")
    assert result.returncode == 1
    assert "skipped under CI=true" in result.stdout and "no data" in result.stdout


def test_a_skip_is_a_skip_outside_ci(tmp_path: Path):
    result = _pytest(tmp_path, "")
    assert result.returncode == 0 and "1 skipped" in result.stdout
