"""debug_request: relayed to the worker's control thread, which runs the debugger.

The supervisor keeps what the worker cannot: requests that arrive while no worker is
ready wait for the next one; requests in flight when a worker dies are answered here;
and a debug session that dies with its worker ends with a ``terminated`` event, so the
frontend's debugger panel resets instead of waiting forever.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import structlog

from kernelsvc.supervisor.protocol import DELIM, Channel, MsgType, dap_failure
from kernelsvc.supervisor.states import WorkerState
from kernelsvc.supervisor.wire import Inbound, unpack_content

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor

log = structlog.get_logger("kernelsvc.supervisor")

# DAP commands after which the worker holds a debug session
SESSION_STARTS = frozenset({"initialize", "attach"})
# A debug request the worker has not answered by then gets a failure response, so one stuck
# request (a __repr__ waiting on a lock the stopped main thread holds) cannot block a client.
REPLY_TIMEOUT = 30.0


class DebugRelay:
    def __init__(self) -> None:
        self.waiting: list[Inbound] = []  # for the next worker
        self.in_flight: dict[str, Inbound] = {}  # msg_id -> request, sent to the worker
        self.session_open = False

    def on_request(self, sup: Supervisor, request: Inbound) -> None:
        if sup.worker_serving():
            self.forward(sup, request)
        elif sup.lifecycle.is_(WorkerState.FATAL) or sup.stop_reason is not None:
            answer_failure(sup, request, "no worker is running")
        else:
            self.waiting.append(request)  # starting or restarting: the next worker answers

    def forward(self, sup: Supervisor, request: Inbound) -> None:
        if unpack_content(sup.session, request).get("command") == "disconnect":
            self.session_open = False
        self.in_flight[request.msg_id] = request
        sup.send_to_worker(Channel.CONTROL, request.wire())
        sup.timers.call_later(REPLY_TIMEOUT, "debug_reply",
                              lambda: self.give_up(sup, request.msg_id))

    def give_up(self, sup: Supervisor, msg_id: str) -> None:
        request = self.in_flight.pop(msg_id, None)
        if request is not None:
            log.warning("debug_request_timeout", msg_id=msg_id, timeout_s=REPLY_TIMEOUT)
            answer_failure(sup, request, f"the debugger did not answer in {REPLY_TIMEOUT:g} s")

    def on_reply(self, sup: Supervisor, frames: list[bytes]) -> bool:
        """The worker answered (frames as it sent them): relay it, unless it comes after we
        gave up on it (the client already has its one reply)."""
        try:
            at = frames.index(DELIM)
            request = self.in_flight.pop(json.loads(frames[at + 3]).get("msg_id", ""), None)
            if request is not None and \
                    unpack_content(sup.session, request).get("command") in SESSION_STARTS:
                # A session is open once the worker's debugger says it started.
                self.session_open = self.session_open or json.loads(frames[at + 5]).get(
                    "success") is True
        except (ValueError, IndexError, AttributeError):
            return False
        return request is not None

    def on_worker_ready(self, sup: Supervisor) -> None:
        waiting, self.waiting = self.waiting, []
        for request in waiting:
            self.forward(sup, request)

    def on_worker_death(self, sup: Supervisor, why: str) -> None:
        """Answer what the dead worker owed, and end its debug session for the frontend."""
        in_flight, self.in_flight = list(self.in_flight.values()), {}
        for request in in_flight:
            answer_failure(sup, request, why)
        if self.session_open:
            self.session_open = False
            log.info("debug_session_ended", reason=why)
            sup.outbox.publish(MsgType.DEBUG_EVENT, {"type": "event", "seq": 0,
                                                     "event": "terminated", "body": {}})

    def fail_all(self, sup: Supervisor, why: str) -> None:
        waiting, self.waiting = self.waiting, []
        for request in waiting:
            answer_failure(sup, request, why)
        self.on_worker_death(sup, why)


def on_debug_request(sup: Supervisor, request: Inbound) -> None:
    sup.debug.on_request(sup, request)


def answer_failure(sup: Supervisor, request: Inbound, why: str) -> None:
    response = dap_failure(unpack_content(sup.session, request), why)
    sup.outbox.reply_busy_idle(sup.sockets.control, request, response)
