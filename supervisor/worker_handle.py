"""One worker process: spawn it in its own process group, watch it, signal it, classify its exit.

OS calls go through ``OsApi`` so lifecycle tests can replace them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from kernelsvc.supervisor.stderr_tail import StderrTail


@dataclass(frozen=True)
class ExitInfo:
    """How a worker ended, in words a user understands."""

    code: int | None = None
    signal: int | None = None

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def describe(self) -> str:
        if self.signal is not None:
            return f"worker killed by {self.signal_name}"
        return f"worker exited with code {self.code}"


def exit_info_from_returncode(returncode: int) -> ExitInfo:
    if returncode < 0:
        return ExitInfo(signal=-returncode)
    return ExitInfo(code=returncode)


class OsApi:
    """The OS seam: the real calls, replaced by a fake in unit tests."""

    def spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # the worker's last words, quoted when it dies
            start_new_session=True,  # own process group: signals reach user subprocesses too
            close_fds=True,
        )

    def pidfd_open(self, pid: int) -> int:
        return os.pidfd_open(pid)

    def killpg(self, pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass  # already gone: the pidfd will tell us


class WorkerHandle:
    """A spawned worker: its pid, process group, pidfd and generation number."""

    def __init__(self, endpoint: str, generation: int, os_api: OsApi | None = None) -> None:
        self.endpoint = endpoint
        self.generation = generation
        self.os = os_api or OsApi()
        self.proc: subprocess.Popen | None = None
        self.pidfd: int | None = None
        self.stderr: StderrTail | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def spawn(self) -> None:
        argv = [
            sys.executable,
            "-P",  # never import the repo's bare worker/ or supervisor/ folders
            "-m",
            "kernelsvc.worker",
            "--endpoint",
            self.endpoint,
            "--identity",
            f"w{self.generation}",
            "--parent-pid",
            str(os.getpid()),
        ]
        self.proc = self.os.spawn(argv, worker_env())
        self.pidfd = self.os.pidfd_open(self.proc.pid)
        self.stderr = StderrTail(os.dup(self.proc.stderr.fileno()), self.proc.pid)
        self.proc.stderr.close()

    def signal_group(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def reap(self) -> ExitInfo:
        """Collect the exit status (the pidfd said it exited) and close the pidfd."""
        assert self.proc is not None
        returncode = self.proc.wait(timeout=1.0)
        self.close_pidfd()
        # The group may still hold user subprocesses: they die with their worker.
        self.os.killpg(self.proc.pid, signal.SIGKILL)
        return exit_info_from_returncode(returncode)

    def close_pidfd(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # Figures show inline in notebooks without %matplotlib inline, as users expect.
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["PYTHONUNBUFFERED"] = "1"
    return env
