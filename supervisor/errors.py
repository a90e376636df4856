"""Typed errors that end the supervisor with a clear one-line message."""

from __future__ import annotations

from kernelsvc.supervisor.protocol import ExitCode


class SupervisorError(Exception):
    """A problem the user must fix; printed as one line, no traceback."""

    exit_code: int = ExitCode.USAGE


class ConnectionFileError(SupervisorError):
    pass


class BindError(SupervisorError):
    pass
