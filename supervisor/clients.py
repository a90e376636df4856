"""What arrives from clients on shell, control, stdin and IOPub subscriptions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from kernelsvc.supervisor import casualties
from kernelsvc.supervisor.control import CONTROL_HANDLERS, answer_kernel_info
from kernelsvc.supervisor.limits import format_bytes
from kernelsvc.supervisor.protocol import NO_REPLY, WORKER_SHELL_TYPES, Channel, MsgType
from kernelsvc.supervisor.relay import ShellQueue
from kernelsvc.supervisor.states import WorkerState
from kernelsvc.supervisor.subshells import subshell_id_of, unknown_subshell
from kernelsvc.supervisor.wire import Inbound, RejectedMessage, peek

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor

log = structlog.get_logger("kernelsvc.supervisor")


class RejectionLog:
    """At most ``per_second`` message_rejected lines a second; the rest are counted and the
    count goes out with the next line, so a flood of junk cannot flood the log."""

    def __init__(self, per_second: int = 10, clock=time.monotonic) -> None:
        self.per_second = per_second
        self.clock = clock
        self.window = -1.0
        self.logged = 0
        self.suppressed = 0

    def record(self, channel: str, reason: str) -> None:
        now = self.clock()
        if now - self.window >= 1.0:
            self.window, self.logged = now, 0
        if self.logged < self.per_second:
            self.logged += 1
            log.warning("message_rejected", channel=channel, reason=reason,
                        suppressed_since_last=self.suppressed)
            self.suppressed = 0
        else:
            self.suppressed += 1


def verify(sup: Supervisor, frames: list[bytes], channel: str) -> Inbound | None:
    try:
        inbound = peek(sup.session, frames)
    except RejectedMessage as exc:
        sup.rejections.record(channel, exc.reason)
        return None
    size = sum(len(frame) for frame in frames)
    if size > sup.config.max_message_size:
        refuse_too_large(sup, inbound, channel, size)
        return None
    return inbound


def refuse_too_large(sup: Supervisor, request: Inbound, channel: str, size: int) -> None:
    """Signed but too big (many frames, each under libzmq's per-frame cap): say so."""
    limit = sup.config.max_message_size
    log.warning("message_too_large", channel=channel, msg_type=request.msg_type, size=size,
                limit=limit)
    if channel == "stdin" or request.msg_type in NO_REPLY:
        return
    sock = sup.sockets.shell if channel == "shell" else sup.sockets.control
    evalue = (f"the {request.msg_type} was {format_bytes(size)}, over the kernel's "
              f"{format_bytes(limit)} limit (--max-message-size)")
    sup.outbox.reply_busy_idle(sock, request, {"status": "error", "ename": "MessageTooLarge",
                                               "evalue": evalue, "traceback": [evalue]})


def on_shell(sup: Supervisor, frames: list[bytes]) -> None:
    request = verify(sup, frames, "shell")
    if request is None:
        return
    if request.msg_type == MsgType.KERNEL_INFO_REQUEST:
        on_shell_kernel_info(sup, request)
    elif request.msg_type in WORKER_SHELL_TYPES:
        queue = shell_queue_for(sup, request)
        if queue is None:
            return
        queue.add(request)
        if sup.lifecycle.is_(WorkerState.FATAL):
            casualties.fail_everything(sup, sup.boot.last_reason)
        sup.dispatch_next()
    else:
        log.warning("message_dropped", channel="shell", msg_type=request.msg_type)


def shell_queue_for(sup: Supervisor, request: Inbound) -> ShellQueue | None:
    """The queue of the shell the request names; an unknown subshell is answered here."""
    subshell_id = subshell_id_of(request)
    if subshell_id is None:
        return sup.queue
    queue = sup.subshells.get(subshell_id)
    if queue is not None:
        return queue
    if request.msg_type in NO_REPLY:
        # JupyterLab sends widget comm messages over a subshell it created once, and is not
        # told when subshells end with a worker: they run on the main shell instead, so
        # widgets keep working after a crash (there is no reply to carry an error anyway).
        log.info("comm_message_to_main_shell", msg_type=request.msg_type,
                 subshell_id=subshell_id)
        return sup.queue
    log.warning("unknown_subshell", msg_type=request.msg_type, subshell_id=subshell_id)
    sup.outbox.reply_busy_idle(sup.sockets.shell, request, unknown_subshell(subshell_id))
    return None


def on_shell_kernel_info(sup: Supervisor, request: Inbound) -> None:
    """Answered by the supervisor at once, busy worker or none (clients use it to learn the
    kernel is alive; requests sent after it wait in the queue for the worker)."""
    answer_kernel_info(sup, request, sup.sockets.shell)


def on_control(sup: Supervisor, frames: list[bytes]) -> None:
    request = verify(sup, frames, "control")
    if request is None:
        return
    handler = CONTROL_HANDLERS.get(request.msg_type)
    if handler is None:
        log.warning("message_dropped", channel="control", msg_type=request.msg_type)
        return
    handler(sup, request)


def on_stdin(sup: Supervisor, frames: list[bytes]) -> None:
    reply = verify(sup, frames, "stdin")
    if reply is None:
        return
    if reply.msg_type != MsgType.INPUT_REPLY or not sup.input_pending:
        log.warning("message_dropped", channel="stdin", msg_type=reply.msg_type)
        return
    sup.input_pending = False
    sup.send_to_worker(Channel.STDIN, reply.wire())


def on_subscription(sup: Supervisor, frames: list[bytes]) -> None:
    event = frames[0]
    if event[:1] == b"\x01":  # subscribe: greet with iopub_welcome (JEP 65)
        topic = event[1:]
        content = {"subscription": topic.decode(errors="replace")}
        # Sent on the subscribed topic itself, so exactly that subscriber can match it.
        sup.outbox.publish(MsgType.IOPUB_WELCOME, content, topic=topic)
