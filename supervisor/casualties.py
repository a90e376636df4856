"""Answers for requests left without a worker: it died, it cannot start, or we stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelsvc.supervisor.crash_report import crash_error
from kernelsvc.supervisor.protocol import NO_REPLY, ExecutionState, MsgType
from kernelsvc.supervisor.relay import ShellQueue
from kernelsvc.supervisor.running_cell import running_cell_count
from kernelsvc.supervisor.subshells import answer_unrun
from kernelsvc.supervisor.wire import Inbound, unpack_content
from kernelsvc.supervisor.worker_handle import ExitInfo

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor


def death_error(sup: Supervisor, request: Inbound, exit_info: ExitInfo) -> dict[str, Any]:
    if sup.kill_error is not None:  # we killed it, and know why
        error = dict(sup.kill_error)
        return {**error, "traceback": [f"{error['ename']}: {error['evalue']}"]}
    if sup.restart_requested:
        evalue = "the kernel was restarted; variables were lost"
        return {"ename": "KernelRestarted", "evalue": evalue, "traceback": [evalue]}
    content = unpack_content(sup.session, request)
    code = content.get("code") if isinstance(content.get("code"), str) else None
    return crash_error(exit_info, sup.worker.stderr_lines(), code)


def answer_dead_request(
    sup: Supervisor, request: Inbound, error: dict[str, Any], replied: bool,
    main_shell: bool = True, abort_queue: bool = True,
) -> None:
    """Exactly one reply per request: only send one if the worker had not."""
    if not replied and request.msg_type not in NO_REPLY:
        reply = {"status": "error", **error}
        if request.msg_type == MsgType.EXECUTE_REQUEST:
            count = running_count(sup, request) if main_shell else None
            sup.outbox.publish("error", error, request.header)
            if count is not None:  # numbers the cell's prompt
                reply["execution_count"] = count
        sup.outbox.reply(sup.sockets.shell, request, reply)
    sup.outbox.status(ExecutionState.IDLE, request.header)
    content = unpack_content(sup.session, request)
    # stop_on_error only for a cell that died unanswered; a cell that had already replied
    # (its worker died between the reply and "done") errored nothing, and a restart drops
    # exactly what was queued before it, not what came after.
    if abort_queue and main_shell and not replied and not sup.restart_requested and \
            request.msg_type == MsgType.EXECUTE_REQUEST and content.get("stop_on_error", True):
        abort_queued_executes(sup)


def running_count(sup: Supervisor, request: Inbound) -> int | None:
    """The dead cell's number, from the worker's running-cell file; if its execute_input
    never reached us (the process died first), the cell is announced for it."""
    count = running_cell_count(sup.private_dir, request.msg_id)
    if count is not None and sup.announced != request.msg_id:
        code = unpack_content(sup.session, request).get("code", "")
        sup.outbox.status(ExecutionState.BUSY, request.header)  # it went out with the input
        sup.outbox.publish("execute_input", {"code": code, "execution_count": count},
                           request.header)
    return count


def answer_running(sup: Supervisor, queue: ShellQueue, error: dict[str, Any],
                   main_shell: bool = True) -> None:
    """The request ``queue`` was running will not finish: answer it with ``error``."""
    replied, running = queue.replied, queue.take_running()
    if running is not None:  # no stop_on_error aborts: the queues are answered next
        answer_dead_request(sup, running, error, replied, main_shell, abort_queue=False)


def answer_dead_subshells(sup: Supervisor, exit_info: ExitInfo) -> None:
    """The worker died: every subshell ends with it. Running requests get the crash path's
    answer; waiting ones an error saying their subshell is gone."""
    for subshell_id, queue in sup.subshells.clear():
        replied, running = queue.replied, queue.take_running()
        if running is not None:
            error = death_error(sup, running, exit_info)
            answer_dead_request(sup, running, error, replied, main_shell=False)
        for waiting in queue.take_all():
            answer_unrun(sup, waiting, "SubshellLost",
                         f"subshell {subshell_id} ended with its worker before this ran")


def close_open_comms(sup: Supervisor, running: Inbound | None) -> None:
    """The worker's comms died with it: tell the frontend, so widgets do not hang."""
    parent = running.header if running is not None else None
    for comm_id in sorted(sup.open_comms):
        sup.outbox.publish("comm_close", {"comm_id": comm_id, "data": {}}, parent,
                            topic=f"comm-{comm_id}".encode())
    sup.open_comms.clear()


def fail_everything(sup: Supervisor, why: str) -> None:
    """Answer every queued request with an error saying why there is no worker."""
    sup.debug.fail_all(sup, why.splitlines()[0] if why else "no worker is running")
    waiting = sup.queue.take_all()
    for _, queue in sup.subshells.items():
        waiting.extend(queue.take_all())
    for request in waiting:
        if request.msg_type in NO_REPLY:
            continue
        error = {"ename": "WorkerUnavailable", "evalue": why.splitlines()[0] if why else "",
                 "traceback": why.splitlines()}
        sup.outbox.reply_busy_idle(sup.sockets.shell, request, {"status": "error", **error})


def abort_queued_executes(sup: Supervisor, among_first: int | None = None) -> None:
    answer_aborted(sup, sup.queue.take_queued_executes(among_first))


def answer_aborted(sup: Supervisor, requests: list[Inbound]) -> None:
    """stop_on_error: requests queued behind a failed cell are answered, not run."""
    for request in requests:
        sup.outbox.status(ExecutionState.BUSY, request.header)
        sup.outbox.reply(
            sup.sockets.shell, request, {"status": "aborted"}, metadata={"status": "aborted"}
        )
        sup.outbox.status(ExecutionState.IDLE, request.header)
