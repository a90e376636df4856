"""JEP 65: every new IOPub subscription is greeted with iopub_welcome."""

from __future__ import annotations

import json

import zmq
from jupyter_client.session import Session


def subscribe(connection_file, topic: bytes):
    info = json.loads(connection_file.read_text())
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(f"tcp://127.0.0.1:{info['iopub_port']}")
    return sock, Session(key=info["key"].encode())


def test_each_subscriber_gets_a_welcome_for_its_topic(kernel, kc):
    for topic in (b"", b"", b"kernel."):
        sock, session = subscribe(kernel.connection_file, topic)
        try:
            assert sock.poll(5000), f"no welcome for {topic!r}"
            idents, frames = session.feed_identities(sock.recv_multipart())
            msg = session.deserialize(frames)
            assert msg["msg_type"] == "iopub_welcome"
            assert msg["content"] == {"subscription": topic.decode()}
            assert idents == ([topic] if topic else [])
        finally:
            sock.close(linger=0)
