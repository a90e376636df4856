"""Verify, peek and sign Jupyter messages on top of jupyter_client's Session.

Inbound messages are verified (HMAC, constant time, replay) and only their header
is decoded; the raw frames are what gets forwarded. The supervisor signs only the
messages it creates itself.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.connection import ConnectionInfo
from kernelsvc.supervisor.protocol import DELIM


class RejectedMessage(Exception):
    """An inbound message that must not be acted on; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Inbound:
    """A verified client message: routing identities, decoded header, raw frames."""

    idents: list[bytes]
    header: dict[str, Any]
    frames: list[bytes]  # [sig, header, parent, metadata, content, *buffers]
    content: dict[str, Any] | None = field(default=None)

    @property
    def msg_type(self) -> str:
        return self.header["msg_type"]

    @property
    def msg_id(self) -> str:
        return self.header["msg_id"]

    def wire(self) -> list[bytes]:
        """The frames to forward to the worker, identities included."""
        return [*self.idents, DELIM, *self.frames]


def make_session(info: ConnectionInfo) -> Session:
    return Session(
        key=info.key,
        signature_scheme=info.signature_scheme,
        username="kernel",
        check_pid=False,
    )


def peek(session: Session, raw: list[bytes]) -> Inbound:
    """Verify ``raw`` and decode its header only. Raises RejectedMessage."""
    try:
        idents, frames = session.feed_identities(raw)
    except ValueError:
        raise RejectedMessage("no delimiter") from None
    if len(frames) < 5:
        raise RejectedMessage("too few frames")
    check_signature(session, frames)
    try:
        header = session.unpack(frames[1])  # only the header: dates stay strings, relayed as is
    except Exception as exc:  # malformed JSON
        raise RejectedMessage(f"malformed message: {type(exc).__name__}") from None
    if not isinstance(header, dict):
        raise RejectedMessage("malformed message: the header is not an object")
    if not isinstance(header.get("msg_id"), str) or not isinstance(header.get("msg_type"), str):
        raise RejectedMessage("msg_id and msg_type must be strings")
    if session.auth is not None:
        session._add_digest(frames[0])  # so a replay of it is refused
    return Inbound(idents=idents, header=header, frames=list(frames))


def check_signature(session: Session, frames: list[bytes]) -> None:
    """The checks Session.deserialize makes (signed, not a replay, HMAC over the four
    message frames, constant-time compare), without its parsing of every date."""
    if session.auth is None:
        return
    signature = frames[0]
    if not signature:
        raise RejectedMessage("unsigned message")
    if signature in session.digest_history:
        raise RejectedMessage("duplicate signature")
    if not hmac.compare_digest(signature, session.sign(frames[1:5])):
        raise RejectedMessage("invalid signature")


def request_metadata(session: Session, inbound: Inbound) -> dict[str, Any]:
    """The metadata of an execute_request (per-request limits live there)."""
    if inbound.msg_type != "execute_request" or inbound.frames[3] == b"{}":
        return {}
    try:
        metadata = session.unpack(inbound.frames[3])
    except Exception:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def unpack_content(session: Session, inbound: Inbound) -> dict[str, Any]:
    """Decode the content of a message the supervisor itself answers."""
    if inbound.content is None:
        try:
            content = session.unpack(inbound.frames[4])
        except Exception:
            content = None
        inbound.content = content if isinstance(content, dict) else {}
    return inbound.content
