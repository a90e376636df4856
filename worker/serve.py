"""Build the kernel (streams, shell, comms) and serve requests one at a time."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import DELIM, Channel, MsgType, SysEvent
from kernelsvc.worker import comms, connect, control, interrupts
from kernelsvc.worker.handlers import HANDLERS, handle
from kernelsvc.worker.kernel import Header, Kernel, Request
from kernelsvc.worker.link import Link
from kernelsvc.worker.shell import KernelShell, build_shell
from kernelsvc.worker.streams import FLUSH_TIMEOUT, FdCapture, OutStream
from kernelsvc.worker.subshells import Requests, Subshells


def build_kernel(
    link: Link, session: Session, config: dict[str, Any]
) -> tuple[Kernel, KernelShell]:
    kernel = Kernel(link, session, config)
    connect.configure(config["connection_file"], config["connection_info"])
    shell = build_shell(kernel)
    shell.register_magic_function(connect.connect_info_magic, "line", "connect_info")
    comms.install(kernel)
    # Until the worker is ready, its output goes to the supervisor's log: if a startup
    # file kills it, what it said is quoted in the boot failure.
    run_startup_files(shell)
    capture_output(kernel)
    interrupts.install()
    return kernel, shell


def run_startup_files(shell: KernelShell) -> None:
    """The profile's startup/*.py and *.ipy, as IPython runs them (errors shown, not fatal)."""
    startup = shell.profile_dir.startup_dir if shell.profile_dir else None
    if not startup or not os.path.isdir(startup):
        return
    for name in sorted(os.listdir(startup)):
        path = os.path.join(startup, name)
        if name.endswith(".py"):
            shell.safe_execfile(path, shell.user_ns, raise_exceptions=False)
        elif name.endswith(".ipy"):
            shell.safe_execfile_ipy(path)


def capture_output(kernel: Kernel) -> None:
    """sys.stdout/stderr and fd 1/2 all become IOPub stream messages."""
    sys.stdout.flush()
    sys.stderr.flush()
    stdout = OutStream(kernel, "stdout", fd=1)
    stderr = OutStream(kernel, "stderr", fd=2)
    FdCapture(1, stdout)
    FdCapture(2, stderr)
    sys.stdout, sys.stderr = stdout, stderr


def start_threads(kernel: Kernel, shell: KernelShell, reader: Session) -> None:
    """Subshells (started by their first request) and control run on threads of their own."""
    link = kernel.link
    subshells = Subshells(lambda requests, subshell: serve_subshell(
        kernel, shell, reader, requests, subshell))
    link.route_subshell = subshells.route
    link.on_sys = subshells.on_sys
    control.start(kernel, shell, reader)


def serve(kernel: Kernel, shell: KernelShell, reader: Session) -> None:
    """Serve the main shell on this (the main) thread until the supervisor says stop."""
    serve_requests(kernel, shell, reader, kernel.link.requests)
    stop(kernel, shell)


def serve_subshell(kernel: Kernel, shell: KernelShell, reader: Session, requests: Requests,
                   subshell: bytes) -> None:
    try:
        serve_requests(kernel, shell, reader, requests, subshell)
    finally:
        kernel.forget_thread()


def serve_requests(kernel: Kernel, shell: KernelShell, reader: Session, requests: Requests,
                   subshell: bytes = b"") -> None:
    """Handle one shell's requests, in order, until told to stop."""
    failed = b""  # the last request that failed with stop_on_error
    while True:
        channel, payload = requests.get()
        if channel == Channel.SYS:
            if payload.get("event") == SysEvent.STOP:
                return
            continue
        behind, *frames = payload  # the msg_id of the request it was sent behind, if any
        request = parse_request(reader, channel, frames)
        request.subshell, request.behind = subshell, behind
        if request.behind:  # sent ahead while another request ran
            if kernel.link.stopping or aborted_by(failed, request):
                continue  # not started: the supervisor answers it
            send_what_came_before(kernel, request)
        failed = request.header["msg_id"].encode() if serve_one(kernel, shell, request) else b""


def aborted_by(failed: bytes, request: Request) -> bool:
    """stop_on_error: an execute sent ahead of one that failed does not run."""
    return request.behind == failed and request.msg_type == MsgType.EXECUTE_REQUEST


def send_what_came_before(kernel: Kernel, request: Request) -> None:
    """The reply of the request before must be out before this one can kill the worker (an
    announced execute waits for its execute_input, queued after that reply, anyway)."""
    content = request.content if isinstance(request.content, dict) else {}
    if request.msg_type != MsgType.EXECUTE_REQUEST or content.get("silent"):
        kernel.link.flush(timeout=FLUSH_TIMEOUT)


def serve_one(kernel: Kernel, shell: KernelShell, request: Request) -> bool:
    """Handle one request, then tell the supervisor it is done (always: it is waiting).
    Returns whether the requests queued behind it are to be aborted (stop_on_error)."""
    abort = False
    try:
        if request.msg_type in HANDLERS:
            _, abort = handle(kernel, shell, request)
    except KeyboardInterrupt:
        pass  # an interrupt that landed between the cell and the reply: nothing to stop
    except Exception:  # a bug of ours: log it for the operator, keep serving
        logging.getLogger("kernelsvc.worker").exception("request_handling_failed")
    if not request.subshell:
        interrupts.install()  # between requests an interrupt is only remembered
        interrupts.forget_pending()  # an interrupt for this request must not hit the next
    kernel.link.send_sys(SysEvent.DONE, msg_id=request.header["msg_id"], abort_queue=abort,
                         subshell_id=request.subshell.decode() or None)
    return abort


def parse_request(reader: Session, channel: str, frames: list[bytes]) -> Request:
    """Decode a request the supervisor forwarded. Not verified again: the supervisor checked
    its signature (and that it is no replay) before forwarding it over our private socket."""
    at = frames.index(DELIM)
    idents, (_, header, parent, metadata, content, *buffers) = frames[:at], frames[at + 1:]
    msg = {"header": Header(header), "parent_header": _object(reader, parent) or {},
           "metadata": _object(reader, metadata) or {}, "content": _object(reader, content),
           "buffers": [memoryview(b) for b in buffers]}
    msg["msg_id"], msg["msg_type"] = msg["header"]["msg_id"], msg["header"]["msg_type"]
    return Request(channel=channel, idents=idents, msg=msg)


def _object(reader: Session, frame: bytes) -> dict[str, Any] | None:
    """A frame's JSON object; None if it is not one (the handlers answer that as an error)."""
    try:
        value = reader.unpack(frame)
    except Exception:
        return None
    return value if isinstance(value, dict) else None


def stop(kernel: Kernel, shell: KernelShell) -> None:
    """Save history, flush output, and leave without slow interpreter teardown."""
    try:
        shell.atexit_operations()
    finally:
        kernel.flush_streams()
        kernel.link.stop()
        os._exit(0)
