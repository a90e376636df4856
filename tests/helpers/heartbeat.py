"""Ping the heartbeat continuously from a thread; record any ping left unanswered."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import zmq


class HeartbeatMonitor:
    def __init__(self, connection_file: Path, timeout: float = 1.0) -> None:
        info = json.loads(connection_file.read_text())
        self.endpoint = f"tcp://{info['ip']}:{info['hb_port']}"
        self.timeout_ms = int(timeout * 1000)
        self.answered = 0
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HeartbeatMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(self.endpoint)
        try:
            while not self._stop.is_set():
                sock.send(b"ping")
                if sock.poll(self.timeout_ms):
                    sock.recv()
                    self.answered += 1
                    self._stop.wait(0.02)  # pace the pings; ends at once when stopped
                else:
                    self.missed += 1
                    sock.close(linger=0)  # a REQ that lost its reply must be replaced
                    sock = ctx.socket(zmq.REQ)
                    sock.linger = 0
                    sock.connect(self.endpoint)
        finally:
            sock.close(linger=0)
            ctx.term()
