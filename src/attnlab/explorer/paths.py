"""Resolving a user-supplied path inside the runs folder, and refusing everything else.

A request names a run and a file by paths relative to the runs folder. Anything that would
read outside it is refused: ``..`` components, absolute paths, NUL bytes, backslashes, and
symbolic links (inside the folder) that point out of it. URL-encoded forms (``%2e%2e``) are
decoded by the web framework before they reach here, so they meet the same checks.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from attnlab.errors import InputError


class OutsideRunsError(InputError):
    """A path that would leave the runs folder (answered 404: nothing is said about what is there)."""


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` resolved (symbolic links followed), if it stays inside ``root``."""
    if "\x00" in relative or "\\" in relative:
        raise OutsideRunsError(f"not a path inside the runs folder: {relative!r}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise OutsideRunsError(f"not a path inside the runs folder: {relative!r}")
    base = root.resolve()
    target = (base / pure).resolve()
    if target != base and base not in target.parents:
        raise OutsideRunsError(f"not a path inside the runs folder: {relative!r}")
    return target
