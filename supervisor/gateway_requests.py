"""What the gateway asks on the comm port: signals and shutdown, acted on by the loop."""

from __future__ import annotations

import json
import signal
import socket
from typing import TYPE_CHECKING

import structlog

from kernelsvc.supervisor.gateway import read_request

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor

log = structlog.get_logger("kernelsvc.supervisor")
STOP_SIGNALS = {signal.SIGTERM, signal.SIGKILL, signal.SIGHUP, signal.SIGQUIT}


def accept(sup: Supervisor, listener: socket.socket) -> None:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    with conn:
        try:
            request = read_request(conn)
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            log.warning("gateway_request_unreadable", error=type(exc).__name__)
            return
    handle(sup, request)


def handle(sup: Supervisor, request: dict) -> None:
    signum = request.get("signum")
    if isinstance(signum, int) and signum != 0:  # 0 is the gateway's liveness poll
        log.info("gateway_signal", signum=signum)
        if signum == signal.SIGINT:
            sup.watchdog.interrupt("gateway")
        elif signum in STOP_SIGNALS:
            sup.begin_stop(f"gateway signal {signum}")
        elif sup.worker is not None:
            sup.worker.signal_group(signum)
    if request.get("shutdown"):
        log.info("gateway_shutdown")
        sup.begin_stop("gateway_shutdown")
