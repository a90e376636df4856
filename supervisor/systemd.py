"""systemd's notify protocol, stdlib only: READY, STATUS, WATCHDOG, STOPPING.

Does nothing unless systemd (or a test) set NOTIFY_SOCKET.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval = _watchdog_interval(env)
        self.ready_sent = False

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str) -> None:
        if self._sock is None:
            return
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode(), self._address)
        except OSError:
            pass  # systemd went away: nothing useful to do about it

    def ready(self, status: str) -> None:
        if not self.ready_sent:
            self.ready_sent = True
            self.notify(READY="1", STATUS=status, MAINPID=str(os.getpid()))

    def status(self, text: str) -> None:
        self.notify(STATUS=text)

    def watchdog(self) -> None:
        self.notify(WATCHDOG="1")

    def stopping(self) -> None:
        self.notify(STOPPING="1", STATUS="stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):  # an abstract socket
        return b"\0" + value[1:].encode()
    return value


def _watchdog_interval(env) -> float | None:
    """Half of WATCHDOG_USEC, as systemd advises; None when no watchdog is asked for us."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2 / 1_000_000
    except ValueError:
        return None
