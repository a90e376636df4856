"""The worker's messaging core: sign and send replies and IOPub messages via the link.

Messages are built here rather than with ``Session.msg``/``Session.serialize`` (the wire
format is the same, signed by the same ``Session``): every request handled sends four or
five, so the header is formatted directly, the parent header is the request's own header
frame as it arrived (see ``Header``), and an empty metadata is a constant.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import get_ident
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import DELIM, PROTOCOL_VERSION, Channel
from kernelsvc.supervisor.running_cell import RunningCellWriter
from kernelsvc.worker.link import Link
from kernelsvc.worker.output_budget import OutputBudget

NO_PARENT: dict[str, Any] = {}  # one object, so streams can compare parents by identity
EMPTY = b"{}"
STATUS_CONTENT = {state: json.dumps({"execution_state": state}).encode()
                  for state in ("busy", "idle")}
# jupyter_client's json_packer, without building a JSONEncoder for every message.
_encode = json.JSONEncoder(default=json_default, ensure_ascii=False, allow_nan=False).encode

_pid = os.getpid()  # os.getpid(), without a system call on every message and write


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


class Header(dict):
    """A request's header, decoded, with the frame it arrived in: messages sent in reply
    use that frame as their parent header as it is, instead of encoding the dict again."""

    __slots__ = ("frame", "cell")

    def __init__(self, frame: bytes) -> None:
        super().__init__(json.loads(frame.decode("utf8", "replace")))
        self.frame = frame
        self.cell: int | None = None  # for an execute_request: its cell in IPython's history


@dataclass
class Request:
    """The request being handled, as the worker's handlers see it."""

    channel: str
    idents: list[bytes]
    msg: dict[str, Any]
    subshell: bytes = b""  # the subshell it came from (empty: the main shell)
    behind: bytes = b""  # the msg_id of the request it was sent behind, while that one ran
    header: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.header = self.msg["header"]

    @property
    def msg_type(self) -> str:
        return self.header["msg_type"]

    @property
    def content(self) -> dict[str, Any]:
        return self.msg["content"]


class Kernel:
    """What user-facing objects (streams, comms, displays) need to talk to the frontend."""

    def __init__(self, link: Link, session: Session, config: dict[str, Any]) -> None:
        self.link = link
        self.running_cell: RunningCellWriter | None = None  # set by main once built
        self.session = session
        self.config = config
        self.pid = os.getpid()
        self._topics: dict[str, bytes] = {}
        # Session.msg_id's format, without its per-message getpid() and trait lookups.
        self._msg_ids = itertools.count()
        self._msg_id_prefix = f"{session.session}_{self.pid}_"
        identity = json.dumps({"username": session.username, "session": session.session})
        # The header is formatted, not encoded: msg_id and date are plain ASCII, msg_type one
        # of ours. Keys in jupyter_client's order.
        self._header = ('{"msg_id": "%s", "msg_type": "%s", ' + identity[1:-1]
                        + ', "date": "%s", "version": "' + PROTOCOL_VERSION + '"}')
        self.engine_id = str(uuid.uuid4())
        self.last_stdin_msg_id: str | None = None
        # Each shell thread (main, subshells) has its own request; output from any other
        # thread (user threads, the fd readers, timers) belongs to the main shell's.
        self._parents: dict[int, Request] = {}
        self._main_thread = threading.main_thread().ident
        self._budgets: dict[str, OutputBudget] = {}
        self._limit: int | None = config.get("max_output_bytes")
        # Output that comes after its request finished (from a thread the cell started) has
        # one budget of its own, so it cannot flood the frontend either.
        self._late = OutputBudget(self._limit)
        self._late_parent: dict[str, Any] = NO_PARENT
        # Where stream output of a cell goes in IPython's history (set by the shell).
        self.stream_history: Callable[[int, str, str], None] | None = None

    @property
    def parent(self) -> Request | None:
        parents = self._parents
        return parents.get(get_ident()) or parents.get(self._main_thread)

    def set_parent(self, request: Request) -> None:
        """The request the calling shell thread now handles. It stays the thread's parent
        after it is done, so late output from the cell's threads still lands under it."""
        self._parents[get_ident()] = request
        if self._limit is not None:
            self._budgets[request.header.get("msg_id", "")] = OutputBudget(self._limit)

    def forget_thread(self) -> None:
        """A subshell thread ends."""
        self._parents.pop(get_ident(), None)

    @property
    def parent_header(self) -> dict[str, Any]:
        parents = self._parents  # self.parent, inlined: every write to sys.stdout asks
        parent = parents.get(get_ident()) or parents.get(self._main_thread)
        return parent.header if parent else NO_PARENT

    @property
    def main_parent_header(self) -> dict[str, Any]:
        """The main shell's request: fd-level output (subprocesses, C code) has no thread to
        tell whose it is, and goes there."""
        parent = self._parents.get(self._main_thread)
        return parent.header if parent else NO_PARENT

    def budget_for(self, header: dict[str, Any]) -> OutputBudget | None:
        """The --max-output-bytes budget of the request ``header`` names (None: no limit);
        once it has finished, the budget for late output."""
        if self._limit is None:
            return None
        budget = self._budgets.get(header.get("msg_id", ""))
        if budget is None:
            self._late_parent = header
            budget = self._late
        return budget

    def topic(self, msg_type: str) -> bytes:
        topic = self._topics.get(msg_type)
        if topic is None:
            topic = self._topics[msg_type] = f"kernel.{self.session.session}.{msg_type}".encode()
        return topic

    def pack(self, obj: Any) -> bytes:
        try:
            return _encode(obj).encode("utf8", errors="surrogateescape")
        except (TypeError, ValueError):
            return self.session.pack(obj)  # jupyter_client's fallback: cleans, then warns

    def serialize(self, msg_type: str, content: dict[str, Any] | bytes, parent: dict[str, Any],
                  metadata: dict[str, Any] | None, idents: list[bytes]) -> tuple[list[bytes], str]:
        """The signed wire frames of a new message (``content`` may come packed), and its
        msg_id."""
        msg_id = f"{self._msg_id_prefix}{next(self._msg_ids)}"
        date = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        parts = [
            (self._header % (msg_id, msg_type, date)).encode(),
            getattr(parent, "frame", None) or (self.pack(parent) if parent else EMPTY),
            self.pack(metadata) if metadata else EMPTY,
            content if isinstance(content, bytes) else self.pack(content),
        ]
        return [*idents, DELIM, self.session.sign(parts), *parts], msg_id

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any] | bytes,
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list | None = None,
        wake: bool = True,
    ) -> None:
        """Send one IOPub message, parented to the current request unless told otherwise
        (``wake``: see Link.send)."""
        if _pid != self.pid:
            return  # a forked child of user code must not speak on our socket
        frames, _ = self.serialize(msg_type, content,
                                   self.parent_header if parent is None else parent, metadata,
                                   [self.topic(msg_type)])
        if buffers:
            frames.extend(buffers)
        self.link.send(Channel.IOPUB, frames, wake)

    def status(self, state: str, parent: dict[str, Any] | None = None,
               wake: bool = True) -> None:
        content = STATUS_CONTENT.get(state) or self.pack({"execution_state": state})
        self.publish("status", content, parent, wake=wake)

    def reply(
        self,
        request: Request,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        msg_type: str | None = None,
        wake: bool = True,
    ) -> None:
        reply_type = msg_type or request.msg_type.removesuffix("_request") + "_reply"
        frames, _ = self.serialize(reply_type, content, request.header, metadata,
                                   request.idents)
        channel = Channel(request.channel)
        if channel == Channel.SHELL:
            frames = [request.subshell, *frames]  # so the supervisor knows which queue
        self.link.send(channel, frames, wake)

    def send_stdin_request(self, content: dict[str, Any]) -> None:
        parent = self.parent
        assert parent is not None
        frames, self.last_stdin_msg_id = self.serialize("input_request", content, parent.header,
                                                        None, parent.idents)
        try:
            self.link.send(Channel.STDIN, frames)
        except KeyboardInterrupt:
            # The IO thread can send the request while this thread is still in send() (it
            # gives up the GIL to wake the IO thread): a user who saw the prompt and
            # interrupted it interrupts input(), as one interrupting it a moment later would.
            raise KeyboardInterrupt("Interrupted by user") from None

    def flush_streams(self) -> None:
        """Queue the output written so far ahead of whatever is sent next."""
        for stream in (sys.stdout, sys.stderr):
            queue_pending = getattr(stream, "queue_pending", None)
            if queue_pending is not None:
                queue_pending()

    def release_held_output(self) -> None:
        """Send what the budget holds back for the current request now (its marker and
        tail), e.g. before an error, so the traceback comes after the output it ends."""
        header = self.parent_header
        msg_id = header.get("msg_id", "")
        budget = self._budgets.get(msg_id)
        if budget is None:
            return
        for name, text in budget.finish():  # finish() also starts the budget afresh
            self.publish("stream", {"name": name, "text": text}, parent=header)

    def finish_output(self) -> None:
        """End of a request: flush, then what the output budget held back (marker and tail)."""
        self.flush_streams()
        header = self.parent_header
        budget = self._budgets.pop(header.get("msg_id", ""), None)
        for name, text in budget.finish() if budget is not None else []:
            self.publish("stream", {"name": name, "text": text}, parent=header)
        # Late output held back since the last request ended: its marker and tail, and a
        # fresh budget for what comes next.
        late_parent = self._late_parent
        for name, text in self._late.finish() if self._limit is not None else []:
            self.publish("stream", {"name": name, "text": text}, parent=late_parent)
