"""SIGINT becomes KeyboardInterrupt only while user code runs; between requests it is ignored."""

from __future__ import annotations

import contextlib
import signal


def _ignore(signum, frame) -> None:
    """Between requests an interrupt has nothing to stop (and must not break the loop)."""


def install() -> None:
    signal.signal(signal.SIGINT, _ignore)


@contextlib.contextmanager
def enabled():
    # default_int_handler raises KeyboardInterrupt without adding a frame to the traceback.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _ignore)
