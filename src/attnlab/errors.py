"""User-facing errors.

Anything raised as an :class:`AttnlabError` is a mistake the user can fix (a bad
config key, a wrong tensor shape, a missing file). The CLI prints its message as
one line and exits with code 2; the library lets it propagate like any exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AttnlabError(Exception):
    """A user error with a one-line, actionable message."""


class ConfigError(AttnlabError, ValueError):
    """An unknown or invalid configuration key or value."""


class InputError(AttnlabError, ValueError):
    """A tensor, file or argument with the wrong shape, dtype, range or content."""


class RunDirError(AttnlabError):
    """A run folder that is missing, finished, unwritable or corrupt."""


class NonFiniteLossError(AttnlabError, FloatingPointError):
    """Training produced NaN or inf; the message names the step and the loss term."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' if none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str | None, choices: Iterable[str]) -> ConfigError:
    """The standard 'unknown X' error, with a suggestion and the valid names."""
    name = str(name)
    options = sorted(choices)
    listing = ", ".join(options) if len(options) <= 12 else ", ".join(options[:12]) + ", ..."
    return ConfigError(f"unknown {kind} '{name}'{did_you_mean(name, options)}; valid: {listing}")
