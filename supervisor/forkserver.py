"""The supervisor's side of the fork server: start it, ask it for workers, hear back.

The fork server (kernelsvc.worker.forkserver) holds IPython already imported, so a new
worker costs a fork, not an interpreter start. This module never imports IPython.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from kernelsvc.supervisor.stderr_tail import StderrTail

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphans in our tree (forked workers, their leftovers) become our children to reap."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class Forked:
    pid: int
    stderr_fd: int


class ForkServer:
    """One fork server process and the socket we talk to it over."""

    def __init__(self, preload: str = "") -> None:
        self.preload = preload
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen | None = None
        self.stderr: StderrTail | None = None
        self.ready = False
        self.eof = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-P", "-m", "kernelsvc.worker.forkserver",
                "--fd", str(theirs.fileno()), "--parent-pid", str(os.getpid())]
        if self.preload:
            argv += ["--preload", self.preload]
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=[theirs.fileno()], start_new_session=True, close_fds=True,
        )
        theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.stderr = StderrTail(os.dup(self.proc.stderr.fileno()), self.proc.pid)
        self.proc.stderr.close()
        self.ready = False
        self.eof = False

    def fileno(self) -> int:
        assert self.sock is not None
        return self.sock.fileno()

    def request_worker(self, identity: str, endpoint: str) -> None:
        assert self.sock is not None and self.ready
        self.sock.send(json.dumps({"identity": identity, "endpoint": endpoint}).encode())

    def receive(self) -> list[Forked]:
        """Read what the fork server said: marks it ready, returns forked workers."""
        forked = []
        while self.sock is not None:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 4096, 1)
            except BlockingIOError:
                break
            if not data:
                self.eof = True  # it exited: the reaper will tell
                break
            message = json.loads(data)
            if "ready" in message:
                self.ready = True
            elif "forked" in message and fds:
                forked.append(Forked(pid=int(message["forked"]), stderr_fd=fds[0]))
        return forked

    def exited(self, returncode: int) -> None:
        """It died and was reaped: forget it (the supervisor starts another)."""
        if self.proc is not None:
            self.proc.returncode = returncode  # reaped by us, not by Popen
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.stderr is not None and not self.stderr.closed:
            self.stderr.read()
            self.stderr.close()
        self.ready = False

    def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
