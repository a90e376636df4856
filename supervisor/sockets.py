"""Bind the five public sockets (and the private worker endpoint)."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zmq

from kernelsvc.supervisor.connection import PORT_NAMES, ConnectionInfo
from kernelsvc.supervisor.errors import BindError

SOCKET_TYPES = {
    "shell_port": zmq.ROUTER,
    "control_port": zmq.ROUTER,
    "stdin_port": zmq.ROUTER,
    "iopub_port": zmq.XPUB,
    # A ROUTER echo, not a REP: a REP's strict envelope lets one junk-sending peer stall
    # everyone's pings; a ROUTER routes each echo back to its sender and never blocks.
    "hb_port": zmq.ROUTER,
}


@dataclass
class PublicSockets:
    shell: zmq.Socket
    control: zmq.Socket
    stdin: zmq.Socket
    iopub: zmq.Socket
    hb: zmq.Socket

    def close(self, linger_ms: int = 0) -> None:
        # A short linger lets the last replies (shutdown_reply) leave before we exit.
        for sock in (self.shell, self.control, self.stdin, self.iopub):
            sock.close(linger=linger_ms)


def bind_public(
    ctx: zmq.Context, info: ConnectionInfo, max_message_size: int = -1,
    port_range: tuple[int, int] = (0, 0),
) -> tuple[PublicSockets, ConnectionInfo]:
    """Bind every public socket; ports of 0 are chosen here. Returns the real ports."""
    bound: dict[str, zmq.Socket] = {}
    ports: dict[str, int] = {}
    try:
        for name in PORT_NAMES:
            sock = ctx.socket(SOCKET_TYPES[name])
            sock.linger = 0
            bound[name] = sock
            _configure(sock, name, max_message_size)
            ports[name] = _bind(sock, info, getattr(info, name), port_range)
    except BindError:
        for sock in bound.values():
            sock.close(linger=0)
        raise
    sockets = PublicSockets(
        shell=bound["shell_port"],
        control=bound["control_port"],
        stdin=bound["stdin_port"],
        iopub=bound["iopub_port"],
        hb=bound["hb_port"],
    )
    return sockets, info.with_ports(ports)


def _configure(sock: zmq.Socket, name: str, max_message_size: int) -> None:
    if name != "iopub_port":
        # Never buffer an unbounded frame: libzmq disconnects a peer that sends a bigger one.
        sock.maxmsgsize = max_message_size
    if name == "iopub_port":
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscription, for iopub_welcome (JEP 65)
    if sock.type == zmq.ROUTER:
        sock.router_handover = 1  # a reconnecting client with the same identity takes over


def _bind(sock: zmq.Socket, info: ConnectionInfo, port: int,
          port_range: tuple[int, int] = (0, 0)) -> int:
    try:
        if info.transport == "tcp" and port == 0 and port_range != (0, 0):
            low, high = port_range  # a gateway's allowed range
            return sock.bind_to_random_port(f"tcp://{info.ip}", low, high + 1, max_tries=200)
        if info.transport == "tcp" and port == 0:
            return sock.bind_to_random_port(f"tcp://{info.ip}")
        if info.transport == "ipc" and port == 0:
            port = _free_ipc_port(info.ip)
        sock.bind(info.endpoint(port))
        return port
    except zmq.ZMQBindError:
        raise BindError(f"no free port in {port_range[0]}..{port_range[1]}") from None
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"cannot bind {info.endpoint(port)}: address already in use") from None
        raise BindError(f"cannot bind {info.endpoint(port)}: {exc.strerror}") from None


def _free_ipc_port(prefix: str) -> int:
    port = 1
    while os.path.exists(f"{prefix}-{port}"):
        port += 1
    return port


def private_endpoint_dir() -> Path:
    """A fresh 0700 directory for the worker endpoint, so no one else can connect."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    parent = base if os.access(base, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="kernelsvc-", dir=parent))
