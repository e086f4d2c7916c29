"""``attnlab explore``'s user errors are one line, and a remote interface needs --allow-remote."""

from pathlib import Path

import pytest

from attnlab.cli import main


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and len(err.strip().splitlines()) == 1, err
    return err


def test_a_missing_runs_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["explore", str(tmp_path / "missing")]) != 0
    assert "no runs folder at" in _one_line_error(capsys)


def test_another_interface_needs_allow_remote(runs_folder: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["explore", str(runs_folder), "--host", "0.0.0.0"]) != 0
    assert "--allow-remote" in _one_line_error(capsys)


def test_a_port_in_use_is_one_line(runs_folder: Path, capsys: pytest.CaptureFixture[str]):
    from attnlab.explorer.server import listening_socket

    taken = listening_socket("127.0.0.1", 0)
    taken.listen()
    try:
        port = taken.getsockname()[1]
        assert main(["explore", str(runs_folder), "--port", str(port)]) != 0
        assert f"cannot listen on 127.0.0.1:{port}" in _one_line_error(capsys)
    finally:
        taken.close()
