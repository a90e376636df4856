"""Messages the supervisor creates itself (and therefore signs)."""

from __future__ import annotations

from typing import Any

import zmq
from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import ExecutionState, MsgType, reply_type
from kernelsvc.supervisor.wire import Inbound


def as_parent(header: dict | None) -> dict:
    """A parent for Session.msg that is read as a header whatever keys the header has."""
    return {"header": header} if header else {}


class Outbox:
    def __init__(self, session: Session, iopub: zmq.Socket) -> None:
        self.session = session
        self.iopub = iopub

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict | None = None,
        topic: bytes | None = None,
    ) -> None:
        if topic is None:
            topic = f"kernel.{self.session.session}.{msg_type}".encode()
        ident = [topic] if topic else []
        self.session.send(self.iopub, msg_type, content, parent=as_parent(parent), ident=ident)

    def stream(self, name: str, text: str, parent: dict | None = None) -> None:
        """Words of the supervisor's own in a cell's output (a warning, a time limit)."""
        content = {"name": name, "text": text}
        self.publish("stream", content, parent, topic=f"stream.{name}".encode())

    def status(self, state: str, parent: dict | None = None) -> None:
        self.publish(MsgType.STATUS, {"execution_state": state}, parent)

    def reply(
        self,
        sock: zmq.Socket,
        request: Inbound,
        content: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.session.send(
            sock,
            reply_type(request.msg_type),
            content,
            parent=as_parent(request.header),
            ident=request.idents,
            metadata=metadata or {},
        )

    def reply_busy_idle(self, sock: zmq.Socket, request: Inbound, content: dict[str, Any]) -> None:
        """busy, reply, idle: what every client expects around a request."""
        self.status(ExecutionState.BUSY, request.header)
        self.reply(sock, request, content)
        self.status(ExecutionState.IDLE, request.header)
