"""The supervisor's side of the fork server: start it, ask it for workers, hear back.

The fork server (kernelsvc.worker.forkserver) holds IPython already imported, so a new
worker costs a fork, not an interpreter start. This module never imports IPython, and
imports little else: ``python -m kernelsvc.supervisor start`` starts the fork server
(``prestart``) before the supervisor's own imports, so the two run side by side.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelsvc.supervisor.stderr_tail import StderrTail

PR_SET_CHILD_SUBREAPER = 36
STARTUP_NICE = 19  # a prestarted fork server's, while the supervisor starts up


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
        self.launch(env)
        self.attach_stderr()

    def launch(self, env: dict[str, str]) -> None:
        """Start the process (what prestart does before the supervisor's imports)."""
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
        self.stderr = None
        self.ready = False
        self.eof = False

    def lower_priority(self) -> bool:
        """While the supervisor starts up (it answers kernel_info as soon as it is up), the
        prestarted fork server's imports take the CPU the supervisor leaves, not its share.
        Only where the priority can be given back (restore_priority: a process may lower a
        nice value only as root, or within RLIMIT_NICE): the workers forked later must not
        inherit it."""
        try:
            ours = os.getpriority(os.PRIO_PROCESS, 0)
            floor = 20 - resource.getrlimit(resource.RLIMIT_NICE)[0]
            if ours < STARTUP_NICE and (os.geteuid() == 0 or floor <= ours):
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, STARTUP_NICE)
                return True
        except OSError:
            pass
        return False

    def restore_priority(self) -> None:
        """The supervisor is up: the fork server gets our priority again."""
        try:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError:
            pass  # it has exited

    def attach_stderr(self) -> None:
        """Read its stderr (logged, and quoted if it fails) from now on."""
        from kernelsvc.supervisor.stderr_tail import StderrTail  # structlog: not in prestart

        self.stderr = StderrTail(os.dup(self.proc.stderr.fileno()), self.proc.pid)
        self.proc.stderr.close()

    def discard(self) -> None:
        """A fork server that will not be used (started early, then not wanted)."""
        self.stop()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        if self.stderr is not None:
            self.stderr.close()

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


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # Figures show inline in notebooks without %matplotlib inline, as users expect.
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["PYTHONUNBUFFERED"] = "1"
    # systemd's notify socket and watchdog are the supervisor's, not the workers'.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    return env


_prestarted: ForkServer | None = None


def prestart(preload: str) -> None:
    """Start the fork server now, for ``kernelsvc start``'s --preload, so that its IPython
    import overlaps the supervisor's own imports and set-up. The Spawner adopts it
    (``take_prestarted``) if its --preload is the same."""
    global _prestarted
    if _prestarted is not None:
        return
    become_subreaper()  # before any worker can be forked, as the Spawner does
    forkserver = ForkServer(preload)
    try:
        forkserver.launch(worker_env())
    except OSError:
        return  # the Spawner starts one the usual way, and reports what goes wrong
    forkserver.lower_priority()
    _prestarted = forkserver


def take_prestarted(preload: str) -> ForkServer | None:
    """The fork server ``prestart`` started, if it is for this --preload and still alive."""
    global _prestarted
    forkserver, _prestarted = _prestarted, None
    if forkserver is None:
        return None
    if forkserver.preload != preload or forkserver.proc.poll() is not None:
        forkserver.discard()
        return None
    forkserver.attach_stderr()
    return forkserver
