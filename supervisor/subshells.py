"""Subshells (JEP 91): the supervisor's table of them, one request queue each.

The supervisor owns the table: create/delete/list are answered here on control, and
unknown ids are refused here; the worker only runs a thread per subshell. A deleted
subshell that is still running a request stays (unlisted) until that request is done.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kernelsvc.supervisor.protocol import NO_REPLY, ExecutionState, SysEvent
from kernelsvc.supervisor.relay import ShellQueue
from kernelsvc.supervisor.wire import Inbound, unpack_content

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor


class SubshellTable:
    def __init__(self) -> None:
        self._queues: dict[str, ShellQueue] = {}
        self._deleted: set[str] = set()

    def create(self) -> str:
        subshell_id = str(uuid.uuid4())
        self._queues[subshell_id] = ShellQueue()
        return subshell_id

    def get(self, subshell_id: str) -> ShellQueue | None:
        """A live subshell's queue (None for unknown or deleted ids)."""
        return None if subshell_id in self._deleted else self._queues.get(subshell_id)

    def find(self, subshell_id: str) -> ShellQueue | None:
        """Any subshell's queue, deleted ones still finishing a request included."""
        return self._queues.get(subshell_id)

    def delete(self, subshell_id: str) -> list[Inbound]:
        """Forget it; returns the requests it had waiting (the caller answers them)."""
        queue = self._queues[subshell_id]
        waiting = queue.take_all()
        if queue.running is None:
            del self._queues[subshell_id]
        else:
            self._deleted.add(subshell_id)
        return waiting

    def release(self, subshell_id: str) -> None:
        """Its running request is done: a deleted subshell is gone now."""
        if subshell_id in self._deleted and self._queues[subshell_id].running is None:
            self._deleted.discard(subshell_id)
            del self._queues[subshell_id]

    def ids(self) -> list[str]:
        return [sid for sid in self._queues if sid not in self._deleted]

    def items(self) -> Iterator[tuple[str, ShellQueue]]:
        return iter(list(self._queues.items()))

    def busy(self) -> bool:
        return any(queue.running is not None for queue in self._queues.values())

    def clear(self) -> list[tuple[str, ShellQueue]]:
        """All of them end (the worker died): returns what they held, for answering."""
        items = list(self._queues.items())
        self._queues.clear()
        self._deleted.clear()
        return items


def subshell_id_of(request: Inbound) -> str | None:
    """The subshell a shell request is for (None: the main shell)."""
    value = request.header.get("subshell_id")
    return value if isinstance(value, str) and value else None


def on_create(sup: Supervisor, request: Inbound) -> None:
    subshell_id = sup.subshells.create()
    sup.outbox.reply_busy_idle(sup.sockets.control, request,
                               {"status": "ok", "subshell_id": subshell_id})


def on_delete(sup: Supervisor, request: Inbound) -> None:
    subshell_id = unpack_content(sup.session, request).get("subshell_id")
    if not isinstance(subshell_id, str) or sup.subshells.get(subshell_id) is None:
        reply = unknown_subshell(subshell_id)
    else:
        for waiting in sup.subshells.delete(subshell_id):
            answer_unrun(sup, waiting, "SubshellDeleted",
                         f"subshell {subshell_id} was deleted before this ran")
        if sup.worker_serving():
            sup.send_sys(SysEvent.DELETE_SUBSHELL, subshell_id=subshell_id)
        reply = {"status": "ok"}
    sup.outbox.reply_busy_idle(sup.sockets.control, request, reply)


def on_list(sup: Supervisor, request: Inbound) -> None:
    sup.outbox.reply_busy_idle(sup.sockets.control, request,
                               {"status": "ok", "subshell_id": sup.subshells.ids()})


def unknown_subshell(subshell_id: object) -> dict[str, object]:
    evalue = f"Unknown subshell_id {subshell_id!r}"
    return {"status": "error", "ename": "UnknownSubshellError", "evalue": evalue,
            "traceback": [evalue]}


def answer_unrun(sup: Supervisor, request: Inbound, ename: str, evalue: str) -> None:
    """A request that will never run: an error reply (just busy/idle if it has none)."""
    if request.msg_type in NO_REPLY:
        sup.outbox.status(ExecutionState.BUSY, request.header)
        sup.outbox.status(ExecutionState.IDLE, request.header)
        return
    error = {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}
    sup.outbox.reply_busy_idle(sup.sockets.shell, request, {"status": "error", **error})
