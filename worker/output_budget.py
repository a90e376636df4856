"""--max-output-bytes: a request's stream output keeps its head and its tail, and says how
much of the middle it left out, so a runaway print cannot drown the frontend."""

from __future__ import annotations

import threading
from collections import deque


class OutputBudget:
    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """A new request: a fresh budget."""
        self.sent = 0
        self.omitted = 0
        self._tail: deque[tuple[str, str]] = deque()
        self._tail_size = 0

    def take(self, name: str, text: str) -> str:
        """The part of ``text`` to send now; the rest waits in the tail (or is dropped)."""
        if self.limit is None:
            return text
        with self._lock:
            head_room = self.limit // 2 - self.sent
            now, later = (text[:head_room], text[head_room:]) if head_room > 0 else ("", text)
            self.sent += len(now)
            if later:
                self._keep(name, later)
            return now

    def _keep(self, name: str, text: str) -> None:
        self._tail.append((name, text))
        self._tail_size += len(text)
        room = self.limit - self.limit // 2
        while self._tail_size > room:
            old_name, old = self._tail.popleft()
            cut = min(len(old), self._tail_size - room)
            self.omitted += cut
            self._tail_size -= cut
            if cut < len(old):
                self._tail.appendleft((old_name, old[cut:]))

    def finish(self) -> list[tuple[str, str]]:
        """At the end of the request: the marker (if anything was left out), then the tail."""
        with self._lock:
            pieces = []
            if self.omitted:
                pieces.append(("stderr", f"\n[kernelsvc: {self.omitted} characters of output "
                                         f"omitted here (--max-output-bytes {self.limit})]\n"))
            pieces.extend(self._tail)
            self.reset()
            return pieces
