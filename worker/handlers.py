"""One function per shell request type; ``HANDLERS`` maps message types to them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from IPython.core.completer import provisionalcompleter, rectify_completions
from IPython.core.interactiveshell import ExecutionResult
from IPython.utils.tokenutil import token_at_cursor

from kernelsvc.supervisor.protocol import NO_REPLY, ExecutionState, MsgType
from kernelsvc.worker import comms, interrupts
from kernelsvc.worker.kernel import Kernel, Request
from kernelsvc.worker.shell import KernelShell
from kernelsvc.worker.stdin import stdin_allowed
from kernelsvc.worker.streams import FLUSH_TIMEOUT

Handler = Callable[[Kernel, KernelShell, Request], dict[str, Any] | None]


def execute(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    content = request.content
    code = content.get("code", "")
    silent = bool(content.get("silent", False))
    store_history = bool(content.get("store_history", not silent))
    if not silent:
        if not request.subshell and kernel.running_cell is not None:
            # Where the supervisor finds the number if the cell kills the worker.
            kernel.running_cell.note(request.header["msg_id"], shell.execution_count)
        kernel.publish("execute_input", {"code": code, "execution_count": shell.execution_count})
        # Out before user code runs, so the frontend saw the cell start (if it kills the
        # worker before ZMQ wrote it, the supervisor announces it from the file).
        kernel.link.flush(timeout=FLUSH_TIMEOUT)
    shell._last_error = None
    result = None
    try:
        with user_code_context(kernel, request):
            result = shell.run_cell(code, store_history=store_history, silent=silent)
    except KeyboardInterrupt as exc:
        if result is None:  # landed before the cell ran (or in IPython's own steps):
            shell.showtraceback((type(exc), exc, None))  # no frames (they are the kernel's)
            result = ExecutionResult(None)
            result.error_in_exec = exc
        # else: the cell had finished; a late interrupt changes nothing
    if store_history:
        shell.schedule_history_write()
    reply = _execute_outcome(shell, result)
    reply["execution_count"] = shell.execution_count - 1
    reply["user_expressions"] = (
        shell.user_expressions(content.get("user_expressions") or {})
        if reply["status"] == "ok"
        else {}
    )
    payload = shell.payload_manager.read_payload()
    if payload:  # clearing sets a trait (validation, notifications): only when there is one
        shell.payload_manager.clear_payload()
    reply["payload"] = payload or []
    return reply


@contextlib.contextmanager
def user_code_context(kernel: Kernel, request: Request) -> Iterator[None]:
    """The main shell owns SIGINT and input(); a subshell's cell can only be interrupted by
    an exception raised in its thread, and leaves input() to the main shell."""
    if request.subshell:
        with interrupts.in_subshell():
            yield
        return
    with stdin_allowed(kernel, bool(request.content.get("allow_stdin", False))), \
            interrupts.enabled(request.header.get("msg_id")):
        yield


def _execute_outcome(shell: KernelShell, result) -> dict[str, Any]:
    if result.success:
        return {"status": "ok"}
    error = result.error_before_exec or result.error_in_exec
    last = shell._last_error or {}
    return {
        "status": "error",
        "ename": type(error).__name__,
        "evalue": str(error),
        "traceback": last.get("traceback", []),
        "engine_info": {"engine_uuid": shell.kernel.engine_id, "engine_id": -1,
                        "method": "execute"},
    }


def complete(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    code = request.content.get("code", "")
    cursor_pos = request.content.get("cursor_pos")
    if cursor_pos is None:
        cursor_pos = len(code)
    with provisionalcompleter():
        raw = shell.Completer.completions(code, cursor_pos)
        completions = list(rectify_completions(code, raw))
    if completions:
        start, end = completions[0].start, completions[0].end
    else:
        start = end = cursor_pos
    types = [
        {"start": c.start, "end": c.end, "text": c.text, "type": c.type,
         "signature": c.signature}
        for c in completions
    ]
    return {
        "status": "ok",
        "matches": [c.text for c in completions],
        "cursor_start": start,
        "cursor_end": end,
        "metadata": {"_jupyter_types_experimental": types},
    }


def inspect(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    code = request.content.get("code", "")
    cursor_pos = request.content.get("cursor_pos", len(code))
    detail_level = request.content.get("detail_level", 0)
    name = token_at_cursor(code, cursor_pos)
    reply: dict[str, Any] = {"status": "ok", "data": {}, "metadata": {}, "found": False}
    try:
        bundle = shell.object_inspect_mime(name, detail_level=detail_level)
    except KeyError:
        return reply
    if not shell.enable_html_pager:
        bundle.pop("text/html", None)
    reply["data"] = bundle
    reply["found"] = True
    return reply


def is_complete(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    status, indent = shell.input_transformer_manager.check_complete(
        request.content.get("code", "")
    )
    reply: dict[str, Any] = {"status": status}
    if status == "incomplete":
        reply["indent"] = " " * (indent or 0)
    return reply


def history(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    c = request.content
    output, raw = bool(c.get("output", False)), bool(c.get("raw", True))
    access = c.get("hist_access_type", "tail")
    hm = shell.history_manager
    if access == "tail":
        items = hm.get_tail(c.get("n", 10), raw=raw, output=output, include_latest=True)
    elif access == "range":
        items = hm.get_range(c.get("session", 0), c.get("start", 0), c.get("stop"), raw=raw,
                             output=output)
        # IPython calls the current session 0; clients asked by its real number (from tail).
        items = [(session or hm.session_number, line, entry) for session, line, entry in items]
    elif access == "search":
        items = hm.search(c.get("pattern", "*"), raw=raw, output=output, n=c.get("n"),
                          unique=bool(c.get("unique", False)))
    else:
        items = []
    return {"status": "ok", "history": [list(item) for item in items]}


def comm_info(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any]:
    target = request.content.get("target_name")
    return {"status": "ok", "comms": comms.describe(target)}


def comm_message(kernel: Kernel, shell: KernelShell, request: Request) -> None:
    """comm_open / comm_msg / comm_close from the frontend: no reply, per the spec."""
    comms.dispatch(request)
    return None


HANDLERS: dict[str, Handler] = {
    MsgType.EXECUTE_REQUEST: execute,
    MsgType.COMPLETE_REQUEST: complete,
    MsgType.INSPECT_REQUEST: inspect,
    MsgType.IS_COMPLETE_REQUEST: is_complete,
    MsgType.HISTORY_REQUEST: history,
    MsgType.COMM_INFO_REQUEST: comm_info,
    MsgType.COMM_OPEN: comm_message,
    MsgType.COMM_MSG: comm_message,
    MsgType.COMM_CLOSE: comm_message,
}


def handle(kernel: Kernel, shell: KernelShell, request: Request) -> tuple[dict | None, bool]:
    """Run one request with busy/idle around it. Returns (reply content, abort the queue)."""
    kernel.set_parent(request)
    # busy leaves at once, or with execute_input (sent and flushed next); the reply and
    # idle with the DONE that serve_one sends next: one round of the IO thread each.
    kernel.status(ExecutionState.BUSY, wake=not _sends_execute_input(request))
    started = datetime.now(UTC)
    try:
        reply = run_handler(kernel, shell, request)
    except Exception as exc:  # a bug in a handler must still answer the request
        reply = None if request.msg_type in NO_REPLY else error_reply(exc)
    kernel.finish_output()
    abort = False
    if reply is not None:
        metadata = {"started": started, "dependencies_met": True, "engine": kernel.engine_id,
                    "status": reply["status"]}
        kernel.reply(request, reply, metadata=metadata, wake=False)
        abort = (
            request.msg_type == MsgType.EXECUTE_REQUEST
            and reply["status"] == "error"
            and bool((request.content or {}).get("stop_on_error", True))
        )
    kernel.status(ExecutionState.IDLE, wake=False)
    return reply, abort


def _sends_execute_input(request: Request) -> bool:
    return request.msg_type == MsgType.EXECUTE_REQUEST and isinstance(request.content, dict) \
        and not request.content.get("silent", False)


def run_handler(kernel: Kernel, shell: KernelShell, request: Request) -> dict[str, Any] | None:
    if request.msg["content"] is None:
        raise BadRequest(f"the content of this {request.msg_type} is not a JSON object")
    return HANDLERS[request.msg_type](kernel, shell, request)


class BadRequest(Exception):
    pass


def error_reply(exc: BaseException) -> dict[str, Any]:
    return {"status": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": []}
