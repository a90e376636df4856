"""Workers come from the fork server; every child of ours is reaped here.

The supervisor is a child subreaper, so forked workers (and whatever they leave
behind) become its children: one ``waitpid(-1)`` loop on SIGCHLD reaps them all,
which also makes the supervisor safe as PID 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import structlog
import zmq

from kernelsvc.supervisor.forkserver import (
    ForkServer,
    become_subreaper,
    take_prestarted,
    worker_env,
)
from kernelsvc.supervisor.worker_handle import ExitInfo, WorkerHandle, exit_info_from_returncode

log = structlog.get_logger("kernelsvc.supervisor")


class Spawner:
    def __init__(
        self,
        poller: zmq.Poller,
        endpoint: str,
        on_worker_exit: Callable[[WorkerHandle, ExitInfo], None],
        on_forkserver_exit: Callable[[ExitInfo, list[str]], None],
        preload: str = "",
    ) -> None:
        self.poller = poller
        self.endpoint = endpoint
        self.on_worker_exit = on_worker_exit
        self.on_forkserver_exit = on_forkserver_exit
        self.worker: WorkerHandle | None = None
        self._fds: set[int] = set()
        if not become_subreaper():
            log.warning("subreaper_unavailable")
        # Started by `python -m kernelsvc.supervisor start` before the supervisor's imports.
        self.forkserver = take_prestarted(preload) or ForkServer(preload)
        self._check_prestarted = self.forkserver.sock is not None
        if self._check_prestarted:
            self._watch_forkserver(prestarted=True)
            self.forkserver.restore_priority()

    # ------------------------------------------------------------ asking for workers

    def spawn(self, generation: int) -> WorkerHandle:
        self.worker = WorkerHandle(generation)
        if self._check_prestarted:
            # It may have died before our SIGCHLD handling was installed, unseen: replace it.
            self._check_prestarted = False
            if self.forkserver.proc.poll() is not None:
                self._unwatch(self.forkserver.fileno())
                self._unwatch(self.forkserver.stderr.fd)
                self.forkserver.discard()
                self.forkserver = ForkServer(self.forkserver.preload)
        if self.forkserver.sock is None:
            self.start_forkserver()
        self._request_if_ready()
        return self.worker

    def start_forkserver(self) -> None:
        self.forkserver.start(worker_env())
        self._watch_forkserver()

    def _watch_forkserver(self, prestarted: bool = False) -> None:
        self._watch(self.forkserver.fileno())
        self._watch(self.forkserver.stderr.fd)
        log.info("forkserver_started", forkserver_pid=self.forkserver.pid, prestarted=prestarted)

    def _request_if_ready(self) -> None:
        worker = self.worker
        if worker and not worker.requested and self.forkserver.ready:
            worker.requested = True
            self.forkserver.request_worker(worker.identity, self.endpoint)

    # ------------------------------------------------------------ the poll loop

    def fds(self) -> set[int]:
        return self._fds

    def handle(self, events: dict) -> None:
        fs = self.forkserver
        if fs.stderr and not fs.stderr.closed and fs.stderr.fd in events:
            self._read_tail(fs.stderr)
        worker = self.worker
        if worker and worker.stderr and not worker.stderr.closed and worker.stderr.fd in events:
            self._read_tail(worker.stderr)
        if fs.sock is not None and fs.fileno() in events:
            for forked in fs.receive():
                self._adopt(forked.pid, forked.stderr_fd)
            if fs.eof:
                self._unwatch(fs.fileno())
            self._request_if_ready()

    def _adopt(self, pid: int, stderr_fd: int) -> None:
        worker = self.worker
        if worker is None or worker.pid is not None or not worker.requested:
            os.close(stderr_fd)  # a worker nobody waits for any more
            os.kill(pid, 9)
            return
        worker.attach(pid, stderr_fd)
        self._watch(stderr_fd)
        log.info("worker_forked", worker_pid=pid, generation=worker.generation)

    def _read_tail(self, tail) -> None:
        tail.read()
        if tail.closed:
            self._unwatch(tail.fd)

    def reap(self) -> None:
        """Collect every child that has exited; tell the supervisor about the ones it owns."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped(pid, os.waitstatus_to_exitcode(status))

    def _reaped(self, pid: int, returncode: int) -> None:
        worker = self.worker
        if worker is not None and pid == worker.pid:
            if worker.stderr is not None:
                self._unwatch(worker.stderr.fd)
            exit_info = worker.exited(returncode)
            self.on_worker_exit(worker, exit_info)
        elif pid == self.forkserver.pid:
            self._unwatch(self.forkserver.fileno())
            self._unwatch(self.forkserver.stderr.fd)
            lines = self.forkserver.stderr.lines()
            self.forkserver.exited(returncode)
            self.on_forkserver_exit(exit_info_from_returncode(returncode), lines)
        else:
            log.debug("orphan_reaped", pid=pid, returncode=returncode)

    def _watch(self, fd: int) -> None:
        self._fds.add(fd)
        self.poller.register(fd, zmq.POLLIN)

    def _unwatch(self, fd: int) -> None:
        if fd in self._fds:
            self._fds.discard(fd)
            self.poller.unregister(fd)

    def stop(self) -> None:
        self.forkserver.stop()
