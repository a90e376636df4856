"""SIGINT becomes KeyboardInterrupt only while user code runs.

The supervisor signals only while a request is running, but the signal can land
just before the cell's code starts (or between requests, for a request still in
the queue). Such an interrupt is remembered and delivered when the code starts;
one that arrives after the request ended is forgotten. Which request an interrupt
was for is in a file the supervisor writes before it signals (a signal carries no
data): one sent as a cell finished, before the supervisor knew, is dropped rather than
hitting the next cell, also when that cell (sent ahead by the supervisor) already runs.
"""

from __future__ import annotations

import _signal  # signal.signal's enum conversions cost ~5 % of a `pass` request (4 calls)
import contextlib
import ctypes
import os
import signal
import threading

SIGINT = int(signal.SIGINT)
_pending = False
_pending_for: str | None = None  # the msg_id that interrupt was meant for, if known
_target_file: str | None = None
_running: str | None = None  # the msg_id of the main shell's request running user code
_subshells_busy: set[int] = set()  # thread ids of subshells running user code
_busy_lock = threading.Lock()


def _remember(signum, frame) -> None:
    global _pending, _pending_for
    _pending, _pending_for = True, _take_target()


def _take_target() -> str | None:
    """The msg_id the supervisor wrote for this SIGINT, blanked once read (in place, the
    same length): a later SIGINT from elsewhere (user code's own, ``interrupt_main``) is then
    for whatever runs. Blanking a target written meanwhile only makes that one untargeted."""
    if _target_file is None:
        return None
    try:
        fd = os.open(_target_file, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.pread(fd, 4096, 0)
        target = data.strip().decode(errors="replace") or None
        if target is not None:
            os.pwrite(fd, b" " * len(data), 0)
        return target
    except OSError:
        return None
    finally:
        os.close(fd)


def install(target_file: str | None = None) -> None:
    global _target_file
    if target_file is not None:
        _target_file = target_file
    _signal.signal(SIGINT, _remember)


def forget_pending() -> None:
    global _pending
    _pending = False


def _interrupt(signum, frame) -> None:
    """While user code runs: KeyboardInterrupt, unless the signal was for another request
    (the one before, which ended as it was sent). The shell drops this frame from the
    traceback the user sees (hide_handler_frame)."""
    target = _take_target()
    if target is None or _running is None or target == _running:
        raise KeyboardInterrupt


def hide_handler_frame(tb) -> None:
    """Cut _interrupt's frame off the end of a KeyboardInterrupt's traceback (in place):
    the user's cell is where it happened."""
    while tb is not None and tb.tb_next is not None:
        if tb.tb_next.tb_next is None and tb.tb_next.tb_frame.f_code is _interrupt.__code__:
            tb.tb_next = None
            return
        tb = tb.tb_next


@contextlib.contextmanager
def enabled(msg_id: str | None = None):
    """While user code runs, SIGINT raises KeyboardInterrupt if it is for this request
    (``msg_id``); a remembered interrupt is delivered now if it was."""
    global _pending, _running
    try:  # the handler is swapped inside the try, so the finally always swaps it back
        _running = msg_id
        _signal.signal(SIGINT, _interrupt)
        if _pending:
            _pending = False
            if _pending_for is None or msg_id is None or _pending_for == msg_id:
                raise KeyboardInterrupt
        yield
    finally:
        _signal.signal(SIGINT, _remember)
        _running = None


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
