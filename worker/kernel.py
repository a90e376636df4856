"""The worker's messaging core: sign and send replies and IOPub messages via the link."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import Channel
from kernelsvc.worker.link import Link
from kernelsvc.worker.output_budget import OutputBudget


@dataclass
class Request:
    """The request being handled, as the worker's handlers see it."""

    channel: str
    idents: list[bytes]
    msg: dict[str, Any]
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
        self.parent: Request | None = None
        self.pid = os.getpid()
        self.engine_id = str(uuid.uuid4())
        self.last_stdin_msg_id: str | None = None
        self.output_budget = OutputBudget(config.get("max_output_bytes"))

    @property
    def parent_header(self) -> dict[str, Any]:
        return self.parent.header if self.parent else {}

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
        self.link.send(Channel(request.channel), frames)

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
        for name, text in self.output_budget.finish():
            self.publish("stream", {"name": name, "text": text})
