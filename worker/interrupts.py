"""SIGINT becomes KeyboardInterrupt only while user code runs.

The supervisor signals only while a request is running, but the signal can land
just before the cell's code starts (or between requests, for a request still in
the queue). Such an interrupt is remembered and delivered when the code starts;
one that arrives after the request ended is forgotten.
"""

from __future__ import annotations

import contextlib
import signal

_pending = False


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
