"""Subshells (JEP 91): each its own thread and queue, all sharing the shell's namespace.

The supervisor owns the list of subshells and checks ids; the worker starts a subshell's
thread when its first request arrives and ends it when the supervisor says it is deleted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from kernelsvc.supervisor.protocol import Channel, SysEvent
from kernelsvc.worker import interrupts

Requests = queue.SimpleQueue[tuple[str, Any]]


class Subshells:
    """Called on the IO thread: routes requests to subshell threads, ends them on delete."""

    def __init__(self, serve: Callable[[Requests, bytes], None]) -> None:
        self._serve = serve
        self._queues: dict[bytes, Requests] = {}

    def route(self, subshell: bytes, frames: list[bytes]) -> None:
        requests = self._queues.get(subshell)
        if requests is None:
            requests = self._queues[subshell] = self._start(subshell)
        requests.put((Channel.SHELL, frames))

    def _start(self, subshell: bytes) -> Requests:
        requests: Requests = queue.SimpleQueue()
        name = f"kernelsvc-subshell-{subshell.decode(errors='replace')[:8]}"
        threading.Thread(target=self._serve, args=(requests, subshell), name=name,
                         daemon=True).start()
        return requests

    def on_sys(self, event: dict[str, Any]) -> bool:
        """Handle the subshell events; others are the main loop's."""
        kind = event.get("event")
        if kind == SysEvent.DELETE_SUBSHELL:
            requests = self._queues.pop(str(event.get("subshell_id", "")).encode(), None)
            if requests is not None:  # it ends after the request it is running, if any
                requests.put((Channel.SYS, {"event": SysEvent.STOP}))
            return True
        if kind == SysEvent.INTERRUPT_SUBSHELLS:
            interrupts.interrupt_subshells()
            return True
        return False
