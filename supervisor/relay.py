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
        self.replied = False  # has the running request's reply gone out?

    def add(self, request: Inbound) -> None:
        self.waiting.append(request)

    def start_next(self) -> Inbound | None:
        """Pop the next request and mark it running, if nothing is running."""
        if self.running is not None or not self.waiting:
            return None
        self.running = self.waiting.popleft()
        self.replied = False
        return self.running

    def finish(self, msg_id: str) -> Inbound | None:
        if self.running is not None and self.running.msg_id == msg_id:
            done, self.running = self.running, None
            return done
        return None

    def take_running(self) -> Inbound | None:
        running, self.running = self.running, None
        return running

    def take_queued_executes(self) -> list[Inbound]:
        """Remove every waiting execute_request (stop_on_error aborts them)."""
        executes = [r for r in self.waiting if r.msg_type == MsgType.EXECUTE_REQUEST]
        self.waiting = deque(r for r in self.waiting if r.msg_type != MsgType.EXECUTE_REQUEST)
        return executes

    def take_all(self) -> list[Inbound]:
        waiting, self.waiting = list(self.waiting), deque()
        return waiting
