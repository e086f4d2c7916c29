"""The rows of docs/engine.md's fault table, from the fault suite's cases as a user meets them:

    python scripts/fault_table.py > rows.md

Each case of ``tests/test_cli_faults.py`` runs in its own prepared folder (copies of one tiny
finished demo run, as the suite makes them); the row holds the one-line message, cut at 150
characters. A case that does not exit 2 with its expected message stops the script.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
from tests.test_cli_faults import CASES, SMOKE, prepare

from attnlab.cli import main


def message(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return code, err.getvalue().strip().removeprefix("attnlab: error: ")


def main_rows() -> None:
    root = Path(tempfile.mkdtemp())
    finished = root / "finished"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "demo", "--run-dir", str(finished), *SMOKE]) == 0
    for i, (case, argv, expect) in enumerate(CASES):
        folder = root / f"case{i}"
        folder.mkdir()
        prepare(folder, argv.split(), finished)
        os.chdir(folder)
        code, text = message(argv.split())
        if code != 2 or expect not in text:
            raise SystemExit(f"{case}: exit {code}, {text!r}")
        cell = (text[:150].rstrip() + " ..." if len(text) > 150 else text).replace("|", "\\|")
        print(f"| {case} | `attnlab {argv}` | {cell} |")


if __name__ == "__main__":
    main_rows()
