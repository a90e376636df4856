"""Heartbeat: echo every ping in a thread of its own, GIL-free inside zmq.proxy."""

from __future__ import annotations

import threading

import zmq


class Heartbeat:
    """Runs ``zmq.proxy_steerable(hb, hb)`` until ``stop()`` sends TERMINATE."""

    def __init__(self, ctx: zmq.Context, sock: zmq.Socket) -> None:
        self._sock = sock
        self._ctrl_addr = f"inproc://kernelsvc-hb-{id(self)}"
        self._ctrl_in = ctx.socket(zmq.PAIR)
        self._ctrl_in.bind(self._ctrl_addr)
        self._ctrl_out = ctx.socket(zmq.PAIR)
        self._ctrl_out.connect(self._ctrl_addr)
        self._thread = threading.Thread(target=self._run, name="kernelsvc-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self._sock, self._sock, None, self._ctrl_in)
        except zmq.ZMQError:
            pass  # context terminated: we are exiting anyway
        finally:
            self._sock.close(linger=0)
            self._ctrl_in.close(linger=0)

    def stop(self, timeout: float = 1.0) -> None:
        self._ctrl_out.send(b"TERMINATE")
        self._thread.join(timeout)
        self._ctrl_out.close(linger=0)
