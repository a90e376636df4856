"""The shell queue: requests wait here and run in the worker one at a time.

The main shell's next request is sent ahead while one runs (``prefetch_next``), so the
worker starts it without waiting for a worker -> supervisor -> worker round trip. Until the
running one is done, the request sent ahead counts as waiting: if the worker dies or is
restarted first, it goes back to the head of the queue.
"""

from __future__ import annotations

from collections import deque

from kernelsvc.supervisor.protocol import MsgType
from kernelsvc.supervisor.wire import Inbound


class ShellQueue:
    """Which request is running in the worker, and which are waiting."""

    def __init__(self) -> None:
        self.waiting: deque[Inbound] = deque()
        self.running: Inbound | None = None
        self.ahead: Inbound | None = None  # sent to the worker, to start when running ends
        # How many requests were waiting when the running request's reply went out
        # (None: no reply yet). stop_on_error aborts only those, never later arrivals.
        self.waiting_at_reply: int | None = None

    def add(self, request: Inbound) -> None:
        self.waiting.append(request)

    @property
    def queued(self) -> int:
        """Requests not yet started: waiting, or sent ahead."""
        return len(self.waiting) + (self.ahead is not None)

    def start_next(self) -> Inbound | None:
        """Pop the next request and mark it running, if nothing is running."""
        if self.running is not None or not self.waiting:
            return None
        self.running = self.waiting.popleft()
        self.waiting_at_reply = None
        return self.running

    def prefetch_next(self) -> Inbound | None:
        """Pop the next request to send ahead of time, if one runs and none is ahead. Not
        once the running one has replied: a request sent ahead was then surely waiting when
        the reply went out, so stop_on_error (in the worker and here) aborts it if an execute."""
        if self.running is None or self.ahead is not None or self.replied or not self.waiting:
            return None
        self.ahead = self.waiting.popleft()
        return self.ahead

    @property
    def replied(self) -> bool:
        return self.waiting_at_reply is not None

    def note_reply(self) -> None:
        if self.running is not None and self.waiting_at_reply is None:
            self.waiting_at_reply = len(self.waiting)

    def finish(self, msg_id: str, aborting: bool = False) -> tuple[Inbound | None, list[Inbound]]:
        """The running request is done, and the one sent ahead (if any) now runs. Returns it
        and, after a stop_on_error failure (``aborting``), the executes that were waiting
        when its reply went out, taken from the queue to be aborted (an execute sent ahead
        among them: the worker skips it)."""
        if self.running is None or self.running.msg_id != msg_id:
            return None, []
        done, ahead, among_first = self.running, self.ahead, self.waiting_at_reply
        self.running = self.ahead = self.waiting_at_reply = None
        if ahead is not None and aborting and ahead.msg_type == MsgType.EXECUTE_REQUEST:
            self.waiting.appendleft(ahead)
            among_first = None if among_first is None else among_first + 1
        elif ahead is not None:
            self.running = ahead
        return done, self.take_queued_executes(among_first) if aborting else []

    def take_running(self) -> Inbound | None:
        """Take the running request away (its worker is gone); one sent ahead never started
        and waits again."""
        running, self.running = self.running, None
        if self.ahead is not None:
            self.waiting.appendleft(self.ahead)
            self.ahead = None
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
