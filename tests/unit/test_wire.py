"""Verification of inbound messages on jupyter_client's Session."""

from __future__ import annotations

import json

import pytest
from jupyter_client.session import Session

from kernelsvc.supervisor.connection import ConnectionInfo
from kernelsvc.supervisor.wire import RejectedMessage, make_session, peek

KEY = b"a-test-key"


@pytest.fixture
def session():
    return make_session(ConnectionInfo(key=KEY))


def signed(msg_type="execute_request", key=KEY, content=None):
    client = Session(key=key)
    msg = client.msg(msg_type, content or {"code": "1"})
    return [b"ident", *client.serialize(msg)], msg


def test_valid_message_peeks_header_without_touching_content(session):
    frames, msg = signed()
    inbound = peek(session, frames)
    assert inbound.idents == [b"ident"]
    assert inbound.msg_id == msg["header"]["msg_id"]
    assert inbound.msg_type == "execute_request"
    assert inbound.frames == frames[2:]  # the raw frames, forwarded unchanged


@pytest.mark.parametrize(("frames", "reason"), [
    ([b"no", b"delimiter"], "no delimiter"),
    ([b"<IDS|MSG>", b"sig", b"{}"], "too few frames"),
])
def test_structurally_broken_messages(session, frames, reason):
    with pytest.raises(RejectedMessage) as err:
        peek(session, frames)
    assert err.value.reason == reason


def test_wrong_key_unsigned_and_replay(session):
    frames, _ = signed(key=b"other")
    with pytest.raises(RejectedMessage, match="invalid signature"):
        peek(session, frames)
    unsigned = [b"<IDS|MSG>", b"", b"{}", b"{}", b"{}", b"{}"]
    with pytest.raises(RejectedMessage, match="unsigned message"):
        peek(session, unsigned)
    good, _ = signed()
    peek(session, good)
    with pytest.raises(RejectedMessage, match="duplicate signature"):
        peek(session, good)


def test_header_that_is_not_an_object(session):
    client = Session(key=KEY)
    parts = [b"[1, 2]", b"{}", b"{}", b"{}"]
    frames = [b"<IDS|MSG>", client.sign(parts), *parts]
    with pytest.raises(RejectedMessage, match="malformed"):
        peek(session, frames)


def test_header_with_non_string_msg_type(session):
    client = Session(key=KEY)
    header = json.dumps({"msg_id": "1", "msg_type": 5, "session": "s", "username": "u",
                         "version": "5.3", "date": "2026-01-01T00:00:00Z"}).encode()
    parts = [header, b"{}", b"{}", b"{}"]
    frames = [b"<IDS|MSG>", client.sign(parts), *parts]
    with pytest.raises(RejectedMessage, match="strings"):
        peek(session, frames)
