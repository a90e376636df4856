"""SIGINT becomes KeyboardInterrupt only while user code runs; between requests it is ignored."""

from __future__ import annotations

import contextlib
import signal
import threading

_executing = threading.Event()


def _on_sigint(signum, frame) -> None:
    if _executing.is_set():
        raise KeyboardInterrupt


def install() -> None:
    signal.signal(signal.SIGINT, _on_sigint)


@contextlib.contextmanager
def enabled():
    _executing.set()
    try:
        yield
    finally:
        _executing.clear()
