"""Build the kernel (streams, shell, comms) and serve requests one at a time."""

from __future__ import annotations

import os
import sys
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.protocol import Channel, SysEvent
from kernelsvc.worker import comms, connect, interrupts
from kernelsvc.worker.handlers import HANDLERS, handle
from kernelsvc.worker.kernel import Kernel, Request
from kernelsvc.worker.link import Link
from kernelsvc.worker.shell import KernelShell, build_shell
from kernelsvc.worker.streams import FdCapture, OutStream


def build_kernel(
    link: Link, session: Session, config: dict[str, Any]
) -> tuple[Kernel, KernelShell]:
    kernel = Kernel(link, session, config)
    connect.configure(config["connection_file"], config["connection_info"])
    capture_output(kernel)
    shell = build_shell(kernel)
    shell.register_magic_function(connect.connect_info_magic, "line", "connect_info")
    comms.install(kernel)
    interrupts.install()
    return kernel, shell


def capture_output(kernel: Kernel) -> None:
    """sys.stdout/stderr and fd 1/2 all become IOPub stream messages."""
    sys.stdout.flush()
    sys.stderr.flush()
    stdout = OutStream(kernel, "stdout", fd=1)
    stderr = OutStream(kernel, "stderr", fd=2)
    FdCapture(1, stdout)
    FdCapture(2, stderr)
    sys.stdout, sys.stderr = stdout, stderr


def serve(kernel: Kernel, shell: KernelShell, reader: Session) -> None:
    """Handle requests until the supervisor says stop."""
    while True:
        channel, payload = kernel.link.requests.get()
        if channel == Channel.SYS:
            if payload.get("event") == SysEvent.STOP:
                break
            continue
        request = parse_request(reader, channel, payload)
        if request is None or request.msg_type not in HANDLERS:
            continue
        _, abort = handle(kernel, shell, request)
        kernel.link.send_sys(SysEvent.DONE, msg_id=request.header["msg_id"], abort_queue=abort)
    stop(kernel, shell)


def parse_request(reader: Session, channel: str, frames: list[bytes]) -> Request | None:
    idents, msg_frames = reader.feed_identities(frames)
    try:
        msg = reader.deserialize(msg_frames)
    except Exception:
        # Verified by the supervisor, so only the content can be broken: answer as an error.
        msg = reader.deserialize(msg_frames, content=False)
        msg["content"] = None
    if not isinstance(msg.get("content"), dict):
        msg["content"] = None
    return Request(channel=channel, idents=idents, msg=msg)


def stop(kernel: Kernel, shell: KernelShell) -> None:
    """Save history, flush output, and leave without slow interpreter teardown."""
    try:
        shell.atexit_operations()
    finally:
        kernel.flush_streams()
        kernel.link.stop()
        os._exit(0)
