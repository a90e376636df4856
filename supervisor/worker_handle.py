"""One worker process: its pid and process group, its stderr, how it ended.

OS calls go through ``OsApi`` so lifecycle tests can replace them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from kernelsvc.supervisor.cgroup import oom_kill_count
from kernelsvc.supervisor.stderr_tail import StderrTail


@dataclass(frozen=True)
class ExitInfo:
    """How a worker ended, in words a user understands."""

    code: int | None = None
    signal: int | None = None
    likely_oom: bool = False  # SIGKILLed while the cgroup's OOM kill count rose

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def describe(self) -> str:
        if self.likely_oom:
            return f"worker killed by {self.signal_name} (likely out of memory: the OOM killer)"
        if self.signal is not None:
            return f"worker killed by {self.signal_name}"
        return f"worker exited with code {self.code}"


def exit_info_from_returncode(returncode: int, oom_kills_rose: bool = False) -> ExitInfo:
    """From ``os.waitstatus_to_exitcode``: negative means killed by that signal."""
    if returncode < 0:
        sig = -returncode
        return ExitInfo(signal=sig, likely_oom=oom_kills_rose and sig == signal.SIGKILL)
    return ExitInfo(code=returncode)


class OsApi:
    """The OS seam: the real calls, replaced by a fake in unit tests."""

    def oom_kill_count(self) -> int | None:
        return oom_kill_count()

    def killpg(self, pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # already gone (its group too): the reaper will tell us


class WorkerHandle:
    """A worker asked of the fork server; its pid arrives once it has been forked."""

    def __init__(self, generation: int, os_api: OsApi | None = None) -> None:
        self.generation = generation
        self.os = os_api or OsApi()
        self.pid: int | None = None
        self.stderr: StderrTail | None = None
        self.exit_info: ExitInfo | None = None
        self.requested = False  # the fork server has been asked for it
        self.oom_kills_at_start: int | None = None
        self.kill_when_known = False

    @property
    def identity(self) -> str:
        return f"w{self.generation}"

    def attach(self, pid: int, stderr_fd: int) -> None:
        self.pid = pid
        self.oom_kills_at_start = self.os.oom_kill_count()
        self.stderr = StderrTail(stderr_fd, pid)
        if self.kill_when_known:
            self.kill()

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.exit_info is None

    def signal_group(self, sig: int) -> None:
        """Its own process group: user subprocesses get the signal too."""
        if self.alive:
            self.os.killpg(self.pid, sig)

    def kill(self) -> None:
        if self.pid is None:
            self.kill_when_known = True
        self.signal_group(signal.SIGKILL)

    def exited(self, returncode: int) -> ExitInfo:
        """It was reaped: record how, and take down what it left in its group."""
        now = self.os.oom_kill_count()
        rose = None not in (now, self.oom_kills_at_start) and now > self.oom_kills_at_start
        self.exit_info = exit_info_from_returncode(returncode, oom_kills_rose=rose)
        self.os.killpg(self.pid, signal.SIGKILL)
        if self.stderr is not None and not self.stderr.closed:
            self.stderr.read()  # everything it wrote before dying is in the pipe now
            self.stderr.close()  # its last lines stay readable
        return self.exit_info

    def stderr_lines(self) -> list[str]:
        return self.stderr.lines() if self.stderr else []
