"""The worker's own stderr (faulthandler, fatal errors): logged, and its last lines kept.

User output never comes here (the worker captures fd 1/2 for IOPub); this pipe carries
what the worker says as it dies, so the crash report can quote it.
"""

from __future__ import annotations

import os
from collections import deque

import structlog

log = structlog.get_logger("kernelsvc.supervisor")

KEEP_LINES = 60


class StderrTail:
    def __init__(self, fd: int, worker_pid: int | None) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.worker_pid = worker_pid
        self._partial = b""
        self._lines: deque[str] = deque(maxlen=KEEP_LINES)
        self.closed = False

    def read(self) -> None:
        """Take what the pipe holds now; at EOF, keep the unterminated last line too."""
        while not self.closed:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not data:
                self._take(self._partial, final=True)
                self.close()
                return
            self._take(self._partial + data)

    def _take(self, data: bytes, final: bool = False) -> None:
        *complete, self._partial = data.split(b"\n")
        if final and self._partial:
            complete.append(self._partial)
            self._partial = b""
        for raw in complete:
            line = raw.decode("utf-8", "replace").rstrip()
            self._lines.append(line)
            if line:
                log.warning("worker_stderr", worker_pid=self.worker_pid, line=line)

    def lines(self) -> list[str]:
        return list(self._lines)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
