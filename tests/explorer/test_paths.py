"""No path outside the runs folder can be named: '..', absolute paths, links out, NUL, backslashes."""

from pathlib import Path

import pytest

from attnlab.explorer.paths import OutsideRunsError, resolve_inside


def test_paths_inside_resolve(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert resolve_inside(tmp_path, "a/b") == (tmp_path / "a" / "b").resolve()
    assert resolve_inside(tmp_path, "a/./b/") == (tmp_path / "a" / "b").resolve()
    assert resolve_inside(tmp_path, "") == tmp_path.resolve()


@pytest.mark.parametrize(
    "path",
    ["..", "../secret.txt", "a/../../secret.txt", "/etc/passwd", "a\\..\\..\\x", "a\x00b", "//etc/passwd"],
)
def test_paths_that_leave_are_refused(tmp_path: Path, path: str):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    with pytest.raises(OutsideRunsError, match="not a path inside the runs folder"):
        resolve_inside(tmp_path / "runs", path)


def test_a_link_that_points_out_is_refused(tmp_path: Path):
    root = tmp_path / "runs"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "folder").symlink_to(tmp_path)
    for path in ("link.txt", "folder/secret.txt"):
        with pytest.raises(OutsideRunsError):
            resolve_inside(root, path)


def test_a_link_that_stays_inside_is_followed(tmp_path: Path):
    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    assert resolve_inside(tmp_path, "alias.txt") == (tmp_path / "real.txt").resolve()
