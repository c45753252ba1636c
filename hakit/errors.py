"""One error tree for the whole kit, each kind mapped to a CLI exit code.

Third-party failures are wrapped into one of these at the boundary, so the CLI
prints a single line and exits with a code a CI job can branch on.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_PRECONDITION = 4
EXIT_UNVERIFIED = 5      # nothing failed, but a check was skipped: a property is not verified
EXIT_INTERRUPTED = 130


class HakitError(Exception):
    """Base error; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_USAGE


class ConfigError(HakitError):
    """Bad input: an inventory, a flag, a file the user named."""

    exit_code = EXIT_USAGE


class UnreachableError(HakitError):
    """The target (API, host, Prometheus) did not answer. `about` names it as (host,
    component), host "" for the cluster as a whole, so a check that could not run is
    joined to the incident that explains it."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, about: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.about = about


class PreconditionError(HakitError):
    """Something the command needs is missing or unhealthy (a tool, root, a lab)."""

    exit_code = EXIT_PRECONDITION


class LabError(PreconditionError):
    """The local lab could not be brought up or operated."""
