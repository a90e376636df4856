"""The worker's one connection to the supervisor, owned by one IO thread.

Every outgoing message (replies, IOPub, stdin requests), from any thread, is queued
here and sent by the IO thread in the order it was queued. Replies and output share
one socket, so the supervisor receives them in the order they happened: IOPub
ordering by construction, with no sleeps. This thread is also what the seed
documents call the IOPub thread (start, stop, schedule, flush).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from kernelsvc.supervisor.frames import recv_frames, send_frames
from kernelsvc.supervisor.protocol import Channel, SysEvent

# Above this many queued frames, senders wait: output floods get backpressure,
# not unbounded memory.
MAX_QUEUED = 2000


class Link:
    """Owns the DEALER; other threads only call ``send``, ``schedule`` and ``flush``."""

    def __init__(self, endpoint: str, identity: bytes) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 1000
        self.sock.identity = identity
        # A DEALER blocks (never drops) at its high-water mark: with the queue below, a
        # worker that outpaces the supervisor waits instead of growing without bound.
        self.sock.sndhwm = 10_000
        self.sock.connect(endpoint)
        self.requests: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self.stdin: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self.control: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        # Set once the kernel is built: where subshell requests go, and sys events that the
        # IO thread handles itself (the main thread may be busy in a cell).
        self.route_subshell: Callable[[bytes, list[bytes]], None] | None = None
        self.on_sys: Callable[[dict[str, Any]], bool] = lambda event: False
        self.stopping = False  # STOP has arrived: requests sent ahead of it must not start
        self._out: collections.deque[list[bytes]] = collections.deque()
        self._room = threading.Condition()
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Set by the first wake after the IO thread last woke up: later ones skip the write
        # (a system call, and a GIL hand-over to the IO thread for each message sent).
        self._woken = False
        self._running = False
        self.thread = threading.Thread(target=self._run, name="kernelsvc-io", daemon=True)

    # ------------------------------------------------------------- any thread

    def start(self) -> None:
        self._running = True
        self.thread.start()

    def send(self, channel: Channel, frames: list[bytes], wake: bool = True) -> None:
        """Queue one message; waits while the queue is full (backpressure). ``wake=False``:
        the caller sends another message at once that wakes the IO thread (a request's
        reply, then its idle, then DONE), so they leave together, in one round."""
        if len(self._out) >= MAX_QUEUED and threading.current_thread() is not self.thread:
            with self._room:
                self._room.wait_for(lambda: len(self._out) < MAX_QUEUED // 2, timeout=5.0)
        self._out.append([channel.frame, *frames])
        if wake:
            self._wake()

    def send_sys(self, event: SysEvent, **fields: Any) -> None:
        self.send(Channel.SYS, [json.dumps({"event": event, **fields}).encode()])

    def schedule(self, f: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run ``f(*args, **kwargs)`` on the IO thread."""
        self._calls.append(lambda: f(*args, **kwargs))
        self._wake()

    def call_later(self, delay: float, f: Callable[[], None]) -> None:
        """Run ``f`` on the IO thread after ``delay`` seconds."""
        self.schedule(self._push_timer, time.monotonic() + delay, f)

    def flush(self, timeout: float = 1.0) -> bool:
        """Wait until everything queued so far has been handed to ZMQ."""
        if threading.current_thread() is self.thread or not self._running:
            return True
        done = threading.Event()
        self.schedule(done.set)
        return done.wait(timeout)

    def stop(self) -> None:
        if self._running:
            self.flush(2.0)
            self._running = False
            self._wake()
            self.thread.join(2.0)

    # ------------------------------------------------------------- IO thread

    def _wake(self) -> None:
        if self._woken:
            return  # the IO thread has not started its next round yet: it will see this too
        self._woken = True
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full, so the IO thread is awake anyway

    def _push_timer(self, deadline: float, f: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (deadline, next(self._seq), f))

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        try:
            while self._running:
                events = dict(poller.poll(self._timeout_ms()))
                if self._wake_r in events:
                    self._drain_wake()
                    self._woken = False  # after draining, before the queues: no wake is lost
                self._send_out()  # before calls: flush() waits for what was queued before it
                self._run_calls()
                self._run_timers()
                self._send_out()
                if self.sock in events:
                    self._receive()
            self._run_calls()
            self._send_out()
        finally:
            self.sock.close()
            self.ctx.term()

    def _timeout_ms(self) -> int:
        if not self._timers:
            return -1
        return max(0, int((self._timers[0][0] - time.monotonic()) * 1000) + 1)

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _run_calls(self) -> None:
        while self._calls:
            self._calls.popleft()()

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            heapq.heappop(self._timers)[2]()

    def _send_out(self) -> None:
        out = self._out
        while out:
            send_frames(self.sock, out.popleft())
        with self._room:
            self._room.notify_all()

    def _receive(self) -> None:
        while True:
            try:
                frames = recv_frames(self.sock)
            except zmq.Again:
                return
            self._route(frames)

    def _route(self, frames: list[bytes]) -> None:
        channel, rest = frames[0].decode(), frames[1:]
        if channel == Channel.STDIN:
            self.stdin.put(rest)
        elif channel == Channel.SYS:
            event = json.loads(rest[0])
            self.stopping = self.stopping or event.get("event") == SysEvent.STOP
            if not self.on_sys(event):
                self.requests.put((channel, event))
        elif channel == Channel.CONTROL:
            self.control.put(rest)
        elif rest[0] and self.route_subshell is not None:
            self.route_subshell(rest[0], rest[1:])
        else:
            self.requests.put((channel, rest[1:]))
IOPubThread = Link  # the seed documents call the publishing thread IOPubThread
