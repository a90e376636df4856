"""The worker's lifecycle as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum


class WorkerState(StrEnum):
    STARTING = "starting"  # spawned, not yet READY
    IDLE = "idle"  # ready, no request running
    BUSY = "busy"  # running one request
    STOPPING = "stopping"  # asked to exit, waiting for it
    DEAD = "dead"  # exited and reaped
    BACKOFF = "backoff"  # failed to boot; waiting before the next try
    FATAL = "fatal"  # failed to boot too often: the service is dead, retrying slowly


TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.STARTING: frozenset({WorkerState.IDLE, WorkerState.STOPPING, WorkerState.DEAD}),
    WorkerState.IDLE: frozenset({WorkerState.BUSY, WorkerState.STOPPING, WorkerState.DEAD}),
    WorkerState.BUSY: frozenset({WorkerState.IDLE, WorkerState.STOPPING, WorkerState.DEAD}),
    WorkerState.STOPPING: frozenset({WorkerState.DEAD}),
    WorkerState.DEAD: frozenset({WorkerState.STARTING, WorkerState.BACKOFF, WorkerState.FATAL}),
    WorkerState.BACKOFF: frozenset({WorkerState.STARTING}),
    WorkerState.FATAL: frozenset({WorkerState.STARTING}),
}


class IllegalTransition(RuntimeError):
    pass


class Lifecycle:
    """Holds the current state and refuses transitions the table does not allow."""

    def __init__(self, on_change=None) -> None:
        self.state = WorkerState.DEAD
        self._on_change = on_change

    def to(self, new: WorkerState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state} -> {new}")
        old, self.state = self.state, new
        if self._on_change is not None:
            self._on_change(old, new)

    def is_(self, *states: WorkerState) -> bool:
        return self.state in states
