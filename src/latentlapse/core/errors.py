"""Exceptions that the command line turns into one-line messages and exit codes.

Library code raises these with a message that already says what is wrong, where, and how to
fix it; the CLI prints ``str(exc)`` and exits with ``exc.exit_code``.
"""

from __future__ import annotations


class LatentlapseError(Exception):
    """Base class: a failure the user can act on. Exit code 1."""

    exit_code = 1


class InputError(LatentlapseError):
    """A data file (or folder) is missing, malformed or unusable. Exit code 1."""


class UsageError(LatentlapseError):
    """Contradictory or out-of-range command-line values. Exit code 2, nothing written."""

    exit_code = 2


class MissingExtraError(LatentlapseError, ImportError):
    """An optional dependency is not installed; the message names the pip extra (also an
    ImportError, what a library user expects)."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package '{package}': "
            f"pip install 'latentlapse[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require_extra(package: str, extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` unless ``package`` is installed. Imports nothing (a
    command line checks its flags with it before any heavy import)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # blocked in sys.modules or by an import hook
        found = False
    if not found:
        raise MissingExtraError(package, extra, purpose)


class RunFailed(LatentlapseError):
    """Training stopped on an unrecoverable condition (NaN loss, full disk)."""
