"""Requests the supervisor answers itself, on control (and kernel_info on shell too)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from kernelsvc.supervisor import __version__, debug, subshells
from kernelsvc.supervisor.config import RestartMode
from kernelsvc.supervisor.kernel_info import kernel_info_content
from kernelsvc.supervisor.limits import tree_rss
from kernelsvc.supervisor.protocol import MsgType
from kernelsvc.supervisor.wire import Inbound, unpack_content

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor

Handler = Callable[["Supervisor", Inbound], None]
SHUTDOWN_TOPIC = b"kernelsvc.shutdown_reply"
SUPERVISOR_FEATURES = ("kernel subshells",)


def kernel_info(sup: Supervisor) -> dict[str, Any]:
    """The worker's kernel_info (cached), and what the supervisor knows."""
    info = dict(sup.worker_kernel_info or supervisor_kernel_info())
    # The supervisor implements subshells, whatever the worker says of itself.
    features = list(info.get("supported_features") or [])
    info["supported_features"] = [*features, *(f for f in SUPERVISOR_FEATURES
                                               if f not in features)]
    info["kernelsvc"] = {
        "version": __version__,
        "supervisor_pid": os.getpid(),
        "worker_pid": sup.worker.pid if sup.worker else None,
        "generation": sup.generation,
        "worker_state": str(sup.lifecycle.state),
        "restarts": sup.generation - 1,
        "uptime_s": round(time.monotonic() - sup.started, 1),
        "limits": sup.config.limits.describe(),
    }
    return info


def usage(sup: Supervisor) -> dict[str, Any]:
    """ipykernel's usage_reply: the worker tree's CPU and memory, and the host's."""
    reply: dict[str, Any] = {"hostname": os.uname().nodename, "pid": os.getpid()}
    reply.update(host_usage())
    pid = sup.worker.pid if sup.worker and sup.worker.alive else None
    if pid is not None:
        reply["kernel_cpu"] = _cpu_percent(pid)
        reply["kernel_memory"] = tree_rss(pid)
    return reply


_cpu_meters: dict[int, psutil.Process] = {}


def _cpu_percent(pid: int) -> float:
    """CPU use since the previous usage_request (psutil needs the same Process object)."""
    try:
        meter = _cpu_meters.get(pid) or _cpu_meters.setdefault(pid, psutil.Process(pid))
        return meter.cpu_percent(interval=None)
    except psutil.Error:
        _cpu_meters.pop(pid, None)
        return 0.0


def answer_kernel_info(sup: Supervisor, request: Inbound, sock) -> None:
    sup.outbox.reply_busy_idle(sock, request, kernel_info(sup))


def on_kernel_info(sup: Supervisor, request: Inbound) -> None:
    answer_kernel_info(sup, request, sup.sockets.control)


def on_interrupt(sup: Supervisor, request: Inbound) -> None:
    # "interrupted", "restarted" (a second interrupt) or "none" (nothing was running)
    action = sup.watchdog.interrupt("message")
    sup.outbox.reply_busy_idle(sup.sockets.control, request, {"status": "ok", "action": action})


def on_shutdown(sup: Supervisor, request: Inbound) -> None:
    content = unpack_content(sup.session, request)
    restart = bool(content.get("restart", False))
    reply = {"status": "ok", "restart": restart}
    sup.outbox.reply_busy_idle(sup.sockets.control, request, reply)
    # ipykernel also publishes the reply on IOPub, so every client learns of the shutdown.
    # On a topic of its own, so the provisioner can subscribe to just this.
    sup.outbox.publish(MsgType.SHUTDOWN_REPLY, reply, request.header, topic=SHUTDOWN_TOPIC)
    if restart and sup.config.restart_mode == RestartMode.IN_PLACE:
        sup.restart_in_place()
    else:
        sup.begin_stop("shutdown_request", restart=restart)


def on_usage(sup: Supervisor, request: Inbound) -> None:
    sup.outbox.reply_busy_idle(sup.sockets.control, request, usage(sup))


CONTROL_HANDLERS: dict[str, Handler] = {
    MsgType.KERNEL_INFO_REQUEST: on_kernel_info,
    MsgType.INTERRUPT_REQUEST: on_interrupt,
    MsgType.SHUTDOWN_REQUEST: on_shutdown,
    MsgType.USAGE_REQUEST: on_usage,
    MsgType.CREATE_SUBSHELL_REQUEST: subshells.on_create,
    MsgType.DELETE_SUBSHELL_REQUEST: subshells.on_delete,
    MsgType.LIST_SUBSHELL_REQUEST: subshells.on_list,
    MsgType.DEBUG_REQUEST: debug.on_debug_request,
}


@functools.cache
def supervisor_kernel_info() -> dict[str, Any]:
    """kernel_info before any worker has said its own (it is starting, or none can): the same
    content, worked out without importing IPython, so the reply is immediate."""
    ipython = _installed_version("ipython")
    banner = (f"Python {sys.version}\n"
              f"IPython {ipython} -- An enhanced Interactive Python. Type '?' for help.\n")
    return kernel_info_content(ipython, banner)


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def host_usage() -> dict[str, object]:
    return {
        "host_cpu_percent": psutil.cpu_percent(interval=None),
        "cpu_count": os.cpu_count(),
        "host_virtual_memory": dict(psutil.virtual_memory()._asdict()),
    }
