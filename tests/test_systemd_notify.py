"""sd_notify against a fake NOTIFY_SOCKET: READY after the first worker, STATUS on changes,
WATCHDOG while the loop lives, STOPPING on SIGTERM."""

from __future__ import annotations

import os
import socket

import pytest

from tests.helpers.kernel import start_kernel

pytestmark = pytest.mark.timeout(60)


def receive(sock: socket.socket, timeout: float = 10.0) -> dict[str, str]:
    sock.settimeout(timeout)
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_notify_ready_status_watchdog_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    kernel = start_kernel(tmp_path, env=env)
    try:
        seen: list[dict[str, str]] = []
        while not any("READY" in m for m in seen):
            seen.append(receive(listener))
        ready = next(m for m in seen if "READY" in m)
        assert ready["READY"] == "1" and ready["MAINPID"] == str(kernel.pid)
        assert ready["STATUS"].startswith("serving; worker ")
        assert any(m.get("STATUS", "").startswith("worker starting") for m in seen)
        watchdogs = 0
        while watchdogs < 3:  # every 0.1 s: half of WATCHDOG_USEC
            watchdogs += receive(listener).get("WATCHDOG") == "1"
        kernel.remember_children()
        kernel.proc.terminate()
        while True:
            message = receive(listener)
            if "STOPPING" in message:
                break
        assert message["STOPPING"] == "1"
        assert kernel.proc.wait(timeout=10) == 0
    finally:
        kernel.stop()
        listener.close()
