"""The shell queue: requests wait here and go to the worker one at a time."""

from __future__ import annotations

from collections import deque

from kernelsvc.supervisor.protocol import MsgType
from kernelsvc.supervisor.wire import Inbound


class ShellQueue:
    """Which request is running in the worker, and which are waiting."""

    def __init__(self) -> None:
        self.waiting: deque[Inbound] = deque()
        self.running: Inbound | None = None
        # How many requests were waiting when the running request's reply went out
        # (None: no reply yet). stop_on_error aborts only those, never later arrivals.
        self.waiting_at_reply: int | None = None

    def add(self, request: Inbound) -> None:
        self.waiting.append(request)

    def start_next(self) -> Inbound | None:
        """Pop the next request and mark it running, if nothing is running."""
        if self.running is not None or not self.waiting:
            return None
        self.running = self.waiting.popleft()
        self.waiting_at_reply = None
        return self.running

    @property
    def replied(self) -> bool:
        return self.waiting_at_reply is not None

    def note_reply(self) -> None:
        if self.running is not None and self.waiting_at_reply is None:
            self.waiting_at_reply = len(self.waiting)

    def finish(self, msg_id: str) -> Inbound | None:
        if self.running is not None and self.running.msg_id == msg_id:
            done, self.running = self.running, None
            return done
        return None

    def take_running(self) -> Inbound | None:
        running, self.running = self.running, None
        return running

    def take_queued_executes(self, among_first: int | None = None) -> list[Inbound]:
        """Remove waiting execute_requests (stop_on_error aborts them), looking only at the
        first ``among_first`` waiting requests when given."""
        waiting = list(self.waiting)
        limit = len(waiting) if among_first is None else among_first
        head, tail = waiting[:limit], waiting[limit:]
        executes = [r for r in head if r.msg_type == MsgType.EXECUTE_REQUEST]
        kept = [r for r in head if r.msg_type != MsgType.EXECUTE_REQUEST]
        self.waiting = deque(kept + tail)
        return executes

    def take_all(self) -> list[Inbound]:
        waiting, self.waiting = list(self.waiting), deque()
        return waiting
