"""A Debug Adapter Protocol client over one TCP connection.

Requests may be sent from any thread; a reader thread hands each response to the
request waiting for it (matched by our own sequence numbers) and each event to a
callback. The reader thread is never traced by the debugger it talks to.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from kernelsvc.supervisor.protocol import dap_failure

log = logging.getLogger("kernelsvc.worker.dap")

REQUEST_TIMEOUT = 30.0  # seconds: an evaluate may run user code


def untraced(thread: threading.Thread) -> threading.Thread:
    """Mark a thread so pydevd neither traces it nor lists it as a debuggee thread."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    return thread




class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: dict[str, Any] | None = None


class DapClient:
    def __init__(self, address: tuple[str, int],
                 on_event: Callable[[dict[str, Any]], None]) -> None:
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.settimeout(None)
        self.on_event = on_event
        self.closed = False
        self._seq = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._lock = threading.Lock()
        self._reader = untraced(threading.Thread(
            target=self._read_loop, name="kernelsvc-dap", daemon=True))
        self._reader.start()

    def request(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        """Send one request and wait for its response (a failure response on timeout)."""
        waiter = _Waiter()
        with self._lock:
            seq = next(self._seq)
            if self.closed:
                return dap_failure({"command": command, "seq": seq},
                                   "the debugger connection is closed")
            self._waiters[seq] = waiter
            self._send({"type": "request", "seq": seq, "command": command,
                        "arguments": arguments or {}})
        if not waiter.done.wait(timeout):
            with self._lock:
                self._waiters.pop(seq, None)
            return dap_failure({"command": command, "seq": seq},
                               f"no response from the debugger in {timeout:g} s")
        assert waiter.response is not None
        return waiter.response

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _read_loop(self) -> None:
        stream = self.sock.makefile("rb")
        try:
            while (message := read_message(stream)) is not None:
                self._dispatch(message)
        except (OSError, ValueError):
            pass  # closed under us, or garbage: either way the connection is over
        finally:
            self._fail_waiters()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "event":
            try:
                self.on_event(message)
            except Exception:
                log.exception("debug_event_failed")
            return
        with self._lock:
            waiter = self._waiters.pop(message.get("request_seq", -1), None)
        if waiter is not None:
            waiter.response = message
            waiter.done.set()

    def _fail_waiters(self) -> None:
        with self._lock:
            self.closed = True
            waiters, self._waiters = self._waiters, {}
        for seq, waiter in waiters.items():
            waiter.response = dap_failure({"seq": seq}, "the debugger connection was lost")
            waiter.done.set()


def read_message(stream) -> dict[str, Any] | None:
    """One ``Content-Length``-framed JSON message; None at end of stream."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("DAP message without Content-Length")
    body = stream.read(length)
    if len(body) < length:
        return None
    return json.loads(body)
