"""The worker's control thread: debug_request, answered even while the main thread is
running a cell or stopped at a breakpoint (the supervisor answers all other control)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import Channel, ExecutionState, MsgType, dap_failure

if TYPE_CHECKING:
    from kernelsvc.worker.debugger import Debugger
    from kernelsvc.worker.kernel import Kernel, Request
    from kernelsvc.worker.shell import KernelShell

THREAD_NAME = "kernelsvc-control"
log = logging.getLogger("kernelsvc.worker")


def start(kernel: Kernel, shell: KernelShell, reader: Session) -> threading.Thread:
    thread = threading.Thread(target=serve_control, args=(kernel, shell, reader),
                              name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def serve_control(kernel: Kernel, shell: KernelShell, reader: Session) -> None:
    from kernelsvc.worker.serve import parse_request

    debugger = None
    while True:
        frames = kernel.link.control.get()
        try:
            request = parse_request(reader, Channel.CONTROL, frames)
            if request.msg_type != MsgType.DEBUG_REQUEST:
                continue  # the supervisor sends only these
            if debugger is None:
                debugger = load_debugger(kernel, shell)
            answer_debug_request(kernel, debugger, request)
        except Exception:  # this thread must outlive any one request
            log.exception("control_request_failed")


def load_debugger(kernel: Kernel, shell: KernelShell) -> Debugger | None:
    """The debugger, if debugpy is installed (kernelsvc[debug]); debugpy itself loads on the
    first request that needs it, in the worker, never in the fork server."""
    from kernelsvc.worker.debugger import make_debugger

    return make_debugger(kernel, shell)


def answer_debug_request(kernel: Kernel, debugger: Debugger | None, request: Request) -> None:
    kernel.status(ExecutionState.BUSY, parent=request.header)
    content = request.content or {}
    # Debugger.handle answers every request, its own failures included.
    reply = debugger.handle(content, parent=request.header) if debugger is not None \
        else no_debugger(content)
    kernel.reply(request, reply)
    kernel.status(ExecutionState.IDLE, parent=request.header)


def no_debugger(content: dict[str, Any]) -> dict[str, Any]:
    return dap_failure(content, "the debugger needs debugpy: pip install kernelsvc[debug]")
