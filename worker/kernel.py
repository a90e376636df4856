"""The worker's messaging core: sign and send replies and IOPub messages via the link."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import Channel
from kernelsvc.worker.link import Link
from kernelsvc.worker.output_budget import OutputBudget

NO_PARENT: dict[str, Any] = {}  # one object, so streams can compare parents by identity


@dataclass
class Request:
    """The request being handled, as the worker's handlers see it."""

    channel: str
    idents: list[bytes]
    msg: dict[str, Any]
    subshell: bytes = b""  # the subshell it came from (empty: the main shell)
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
        self.session = session
        self.config = config
        self.pid = os.getpid()
        self.engine_id = str(uuid.uuid4())
        self.last_stdin_msg_id: str | None = None
        # Each shell thread (main, subshells) has its own request; output from any other
        # thread (user threads, the fd readers, timers) belongs to the main shell's.
        self._parents: dict[int, Request] = {}
        self._main_thread = threading.main_thread().ident
        self._budgets: dict[str, OutputBudget] = {}

    @property
    def parent(self) -> Request | None:
        parents = self._parents
        return parents.get(threading.get_ident()) or parents.get(self._main_thread)

    def set_parent(self, request: Request) -> None:
        """The request the calling shell thread now handles. It stays the thread's parent
        after it is done, so late output from the cell's threads still lands under it."""
        self._parents[threading.get_ident()] = request
        budget = OutputBudget(self.config.get("max_output_bytes"))
        self._budgets[request.header.get("msg_id", "")] = budget

    def forget_thread(self) -> None:
        """A subshell thread ends."""
        self._parents.pop(threading.get_ident(), None)

    @property
    def parent_header(self) -> dict[str, Any]:
        parent = self.parent
        return parent.header if parent else NO_PARENT

    def budget_for(self, header: dict[str, Any]) -> OutputBudget | None:
        """The --max-output-bytes budget of a running request (None once it is finished:
        late output from its threads is not held back for a tail that is never sent)."""
        return self._budgets.get(header.get("msg_id", ""))

    def topic(self, msg_type: str) -> bytes:
        return f"kernel.{self.session.session}.{msg_type}".encode()

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list | None = None,
    ) -> None:
        """Send one IOPub message, parented to the current request unless told otherwise."""
        if os.getpid() != self.pid:
            return  # a forked child of user code must not speak on our socket
        msg = self.session.msg(
            msg_type,
            content,
            parent={"header": self.parent_header if parent is None else parent},
            metadata=metadata,
        )
        frames = self.session.serialize(msg, ident=[self.topic(msg_type)])
        self.link.send(Channel.IOPUB, frames + list(buffers or []))

    def status(self, state: str, parent: dict[str, Any] | None = None) -> None:
        self.publish("status", {"execution_state": state}, parent)

    def reply(
        self,
        request: Request,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        msg_type: str | None = None,
    ) -> None:
        reply_type = msg_type or request.msg_type.removesuffix("_request") + "_reply"
        msg = self.session.msg(reply_type, content, parent=request.msg, metadata=metadata)
        frames = self.session.serialize(msg, ident=request.idents)
        channel = Channel(request.channel)
        if channel == Channel.SHELL:
            frames = [request.subshell, *frames]  # so the supervisor knows which queue
        self.link.send(channel, frames)

    def send_stdin_request(self, content: dict[str, Any]) -> None:
        assert self.parent is not None
        msg = self.session.msg("input_request", content, parent=self.parent.msg)
        self.last_stdin_msg_id = msg["header"]["msg_id"]
        self.link.send(Channel.STDIN, self.session.serialize(msg, ident=self.parent.idents))

    def flush_streams(self) -> None:
        """Queue the output written so far ahead of whatever is sent next."""
        for stream in (sys.stdout, sys.stderr):
            queue_pending = getattr(stream, "queue_pending", None)
            if queue_pending is not None:
                queue_pending()

    def finish_output(self) -> None:
        """End of a request: flush, then what the output budget held back (marker and tail)."""
        self.flush_streams()
        header = self.parent_header
        budget = self._budgets.pop(header.get("msg_id", ""), None)
        for name, text in budget.finish() if budget is not None else []:
            self.publish("stream", {"name": name, "text": text}, parent=header)
