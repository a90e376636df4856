"""SIGINT becomes KeyboardInterrupt only while user code runs.

The supervisor signals only while a request is running, but the signal can land
just before the cell's code starts (or between requests, for a request still in
the queue). Such an interrupt is remembered and delivered when the code starts;
one that arrives after the request ended is forgotten.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading

_pending = False
_subshells_busy: set[int] = set()  # thread ids of subshells running user code
_busy_lock = threading.Lock()


def _remember(signum, frame) -> None:
    global _pending
    _pending = True


def install() -> None:
    signal.signal(signal.SIGINT, _remember)


def forget_pending() -> None:
    global _pending
    _pending = False


@contextlib.contextmanager
def enabled():
    """While user code runs: default_int_handler raises KeyboardInterrupt (adding no frame)."""
    global _pending
    try:  # the handler is swapped inside the try, so the finally always swaps it back
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if _pending:
            _pending = False
            raise KeyboardInterrupt
        yield
    finally:
        signal.signal(signal.SIGINT, _remember)


@contextlib.contextmanager
def in_subshell():
    """A subshell's user code: interrupt_subshells() may raise KeyboardInterrupt in it."""
    tid = threading.get_ident()
    with _busy_lock:
        _subshells_busy.add(tid)
    try:
        yield
    finally:
        with _busy_lock:
            _subshells_busy.discard(tid)
            _set_async_exc(tid, None)  # one that was not delivered in time is dropped


def interrupt_subshells() -> int:
    """KeyboardInterrupt in every subshell thread running user code (delivered at its next
    bytecode: a blocking C call finishes first). Returns how many were interrupted."""
    with _busy_lock:
        for tid in _subshells_busy:
            _set_async_exc(tid, KeyboardInterrupt)
        return len(_subshells_busy)


def _set_async_exc(tid: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(tid), ctypes.py_object(exc) if exc is not None else None)
