"""Signals become bytes on a socketpair the loop polls; handlers only record."""

from __future__ import annotations

import signal
import socket

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def _record(signum, frame) -> None:
    """Nothing to do here: set_wakeup_fd has already written the signal number."""


class SignalPipe:
    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, _record)

    def fileno(self) -> int:
        return self._read.fileno()

    def drain(self) -> list[signal.Signals]:
        try:
            data = self._read.recv(256)
        except BlockingIOError:
            return []
        return [signal.Signals(b) for b in data]

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._read.close()
        self._write.close()
