"""Deadlines for the one loop: the poll timeout is only ever the time to the next one."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable


class Timers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, str, Callable[[], None]]] = []
        self._seq = itertools.count()

    def call_later(self, delay: float, name: str, callback: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (self._clock() + delay, next(self._seq), name, callback))

    def cancel(self, name: str) -> None:
        self._heap = [t for t in self._heap if t[2] != name]
        heapq.heapify(self._heap)

    def timeout_ms(self) -> int | None:
        """Milliseconds until the next deadline, for zmq.Poller.poll (None: no deadline)."""
        if not self._heap:
            return None
        return max(0, int((self._heap[0][0] - self._clock()) * 1000) + 1)

    def run_due(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            _, _, _, callback = heapq.heappop(self._heap)
            callback()
