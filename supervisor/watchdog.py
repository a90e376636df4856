"""Watching the running request: interrupts that escalate, time limits, memory limits.

Everything here runs on the supervisor's timers; when a worker must go, it is killed
through the crash path with an error that says why, so every request is still answered.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

import structlog

from kernelsvc.supervisor.limits import Limits, format_bytes, tree_rss
from kernelsvc.supervisor.protocol import INTERRUPT_TARGET, SysEvent
from kernelsvc.supervisor.record_file import RecordFile
from kernelsvc.supervisor.states import WorkerState
from kernelsvc.supervisor.wire import Inbound

if TYPE_CHECKING:
    from kernelsvc.supervisor.loop import Supervisor

log = structlog.get_logger("kernelsvc.supervisor")

BUSY_SAMPLE = 0.1  # seconds between memory samples while a request runs
IDLE_SAMPLE = 1.0  # ...and while idle (threads started by cells can still allocate)


class Watchdog:
    def __init__(self, sup: Supervisor, limits: Limits) -> None:
        self.sup = sup
        self.limits = limits
        self.interrupted: str | None = None  # msg_id of the request we sent SIGINT for
        self.warned: str | None = None  # msg_id whose cell got the memory warning
        self.last_rss = 0
        self.target = InterruptTarget(os.path.join(sup.private_dir, INTERRUPT_TARGET))

    # ------------------------------------------------------------ interrupts

    def interrupt(self, source: str) -> str:
        """SIGINT to the worker's group; a second one, or none answered in time, restarts it.
        Returns what happened, for the interrupt_reply."""
        sup = self.sup
        # A user's interrupt is process-wide (JEP 91); a main cell's time limit is not.
        subshells = source != "cell_timeout" and self.interrupt_subshells()
        running = sup.queue.running
        if running is None or not sup.lifecycle.is_(WorkerState.BUSY):
            return "interrupted" if subshells else "none"  # nothing else runs: harmless
        if self.interrupted == running.msg_id:
            self.escalate(running, "was interrupted twice")
            return "restarted"
        self.interrupted = running.msg_id
        self.target.write(running.msg_id)  # before the signal
        sup.worker.signal_group(signal.SIGINT)
        log.info("interrupt_sent", source=source, worker_pid=sup.worker.pid,  # after: ~0.1 ms
                 generation=sup.generation, msg_id=running.msg_id)
        sup.timers.call_later(self.limits.interrupt_timeout, "interrupt",
                              lambda: self._interrupt_deadline(running.msg_id))
        return "interrupted"

    def interrupt_subshells(self) -> bool:
        """SIGINT reaches only the worker's main thread: subshells running a request are
        told separately (the worker raises KeyboardInterrupt in their threads)."""
        sup = self.sup
        if not (sup.subshells.busy() and sup.worker_serving()):
            return False
        log.info("interrupt_sent", source="subshells", worker_pid=sup.worker.pid,
                 generation=sup.generation)
        sup.send_sys(SysEvent.INTERRUPT_SUBSHELLS)
        return True

    def _interrupt_deadline(self, msg_id: str) -> None:
        running = self.sup.queue.running
        if running is not None and running.msg_id == msg_id and self.interrupted == msg_id:
            self.escalate(running, f"did not respond to interrupt within "
                                   f"{self.limits.interrupt_timeout:g} s")

    def escalate(self, running: Inbound, why: str) -> None:
        log.warning("interrupt_escalated", reason=why, msg_id=running.msg_id,
                    worker_pid=self.sup.worker.pid, generation=self.sup.generation)
        self.sup.kill_worker_for({
            "ename": "WorkerRestarted",
            "evalue": f"{why}; worker restarted, variables lost",
        })

    # ------------------------------------------------------------ per request

    def on_dispatch(self, request: Inbound, metadata: dict[str, Any]) -> None:
        self.interrupted = None
        self.warned = None
        self.start_sampling()  # at the busy rate from the first moment of the cell
        timeout = _cell_timeout(metadata) or self.limits.cell_timeout
        if timeout:
            self.sup.timers.call_later(timeout, "cell_timeout",
                                       lambda: self._cell_timeout(request.msg_id, timeout))

    def on_done(self) -> None:
        self.interrupted = None
        self.sup.timers.cancel("cell_timeout")
        self.sup.timers.cancel("interrupt")

    def _cell_timeout(self, msg_id: str, timeout: float) -> None:
        running = self.sup.queue.running
        if running is None or running.msg_id != msg_id:
            return
        log.warning("cell_timeout", msg_id=msg_id, timeout_s=timeout)
        self.sup.outbox.stream("stderr", f"kernelsvc: the cell ran past its time limit of "
                                         f"{timeout:g} s; interrupting it\n", running.header)
        self.interrupt("cell_timeout")

    # ------------------------------------------------------------ memory

    def start_sampling(self) -> None:
        if self.limits.memory_bytes:
            self.sup.timers.cancel("memory")
            self.sup.timers.call_later(BUSY_SAMPLE, "memory", self.sample)

    def sample(self) -> None:
        sup = self.sup
        worker = sup.worker
        if worker is None or not worker.alive or self.limits.memory_bytes is None:
            return
        busy = sup.lifecycle.is_(WorkerState.BUSY)
        sup.timers.call_later(BUSY_SAMPLE if busy else IDLE_SAMPLE, "memory", self.sample)
        self.last_rss = tree_rss(worker.pid)
        limit = self.limits.memory_bytes
        running = sup.queue.running
        if self.last_rss >= limit:
            self._over_limit(limit)
        elif self.last_rss >= limit * self.limits.warn_fraction and running is not None \
                and self.warned != running.msg_id:
            self.warned = running.msg_id
            log.warning("memory_limit_near", rss=self.last_rss, limit=limit,
                        msg_id=running.msg_id)
            sup.outbox.stream("stderr", f"kernelsvc: warning: this kernel uses "
                                        f"{format_bytes(self.last_rss)} of its "
                                        f"{format_bytes(limit)} memory limit\n",
                              running.header)

    def near_limit(self) -> bool:
        """Was the last sample close to the limit (a SIGKILL now is likely the OOM killer)?"""
        limit = self.limits.memory_bytes
        return bool(limit) and self.last_rss >= 0.9 * limit

    def _over_limit(self, limit: int) -> None:
        used = self.last_rss
        log.error("memory_limit_exceeded", rss=used, limit=limit,
                  worker_pid=self.sup.worker.pid, generation=self.sup.generation)
        self.sup.timers.cancel("memory")
        self.sup.kill_worker_for({
            "ename": "MemoryLimitExceeded",
            "evalue": f"the worker used {format_bytes(used)} of its {format_bytes(limit)} "
                      f"limit; worker restarted, variables lost",
        })


class InterruptTarget(RecordFile):
    """Which request the next SIGINT is for, where the worker's handler reads it: a signal
    that lands after that request ended must not interrupt the next one. Written before the
    signal; the worker blanks what it read, so a target is used by one signal only."""

    def write(self, msg_id: str) -> None:
        try:
            super().write(msg_id)
        except OSError as exc:  # the interrupt still goes out, untargeted (as before)
            log.warning("interrupt_target_unwritten", error=type(exc).__name__)


def _cell_timeout(metadata: dict[str, Any]) -> float | None:
    """A per-request limit: execute_request metadata {"timeout": seconds}."""
    value = metadata.get("timeout") if isinstance(metadata, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
