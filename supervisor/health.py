"""`kernelsvc health`: is the service alive and useful? For container and pod probes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.session import Session

from kernelsvc.supervisor.connection import ConnectionInfo, load_connection_file
from kernelsvc.supervisor.wire import make_session


def check_health(path: Path, timeout: float) -> tuple[bool, dict[str, Any]]:
    """Ping the heartbeat and ask control for kernel_info, each within ``timeout`` seconds."""
    info = load_connection_file(path)
    ctx = zmq.Context()
    try:
        started = time.monotonic()
        if not _ping(ctx, info, timeout):
            return False, {"healthy": False, "reason": "heartbeat did not answer"}
        reply = _kernel_info(ctx, info, make_session(info), timeout)
        if reply is None:
            return False, {"healthy": False, "reason": "kernel_info did not answer"}
        status = reply.get("kernelsvc", {})
        state = status.get("worker_state")
        healthy = state not in ("fatal", None)
        report = {
            "healthy": healthy,
            "state": state,
            "worker_pid": status.get("worker_pid"),
            "supervisor_pid": status.get("supervisor_pid"),
            "restarts": status.get("restarts"),
            "uptime_s": status.get("uptime_s"),
            "limits": status.get("limits"),
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
        }
        if not healthy:
            report["reason"] = "no worker can start (the kernel is dead)"
        return healthy, report
    finally:
        ctx.destroy(linger=0)


def _ping(ctx: zmq.Context, info: ConnectionInfo, timeout: float) -> bool:
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(info.endpoint(info.hb_port))
    sock.send(b"kernelsvc-health")
    return bool(sock.poll(int(timeout * 1000))) and sock.recv() == b"kernelsvc-health"


def _kernel_info(ctx: zmq.Context, info: ConnectionInfo, session: Session,
                 timeout: float) -> dict[str, Any] | None:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(info.endpoint(info.control_port))
    request = session.msg("kernel_info_request", {})
    session.send(sock, request)
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if not sock.poll(int(remaining * 1000)):
            break
        _, frames = session.feed_identities(sock.recv_multipart())
        reply = session.deserialize(frames)
        if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
            return reply["content"]
    return None
