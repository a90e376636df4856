"""The main shell's cell about to run user code, in a file of the private directory.

The worker hands the cell's execute_input to ZMQ before user code runs, but code that
kills the process at once (``os._exit``) can beat ZMQ's I/O thread to the socket, and the
execute_input is lost. So the worker also writes the cell's msg_id and number here (one
pwrite into the page cache, which outlives the process); the supervisor reads it when the
worker dies with no execute_input received, so the crash reply is numbered and the cell is
announced all the same.
"""

from __future__ import annotations

import os

RUNNING_CELL = "running-cell"
WIDTH = 256  # bytes written each time (padded), so a shorter record leaves no tail


class RunningCellWriter:
    """The worker's side: one open file, rewritten in place for every announced cell."""

    def __init__(self, private_dir: str) -> None:
        self.fd = os.open(os.path.join(private_dir, RUNNING_CELL),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, msg_id: str, count: int) -> None:
        record = f"{count} {msg_id}\n".encode()
        os.pwrite(self.fd, record.ljust(WIDTH), 0)


def running_cell_count(private_dir: str | os.PathLike[str], msg_id: str) -> int | None:
    """The number the worker gave cell ``msg_id`` before it ran, if it got that far."""
    try:
        with open(os.path.join(private_dir, RUNNING_CELL), "rb") as f:
            count, _, written = f.readline().decode(errors="replace").strip().partition(" ")
    except OSError:
        return None
    return int(count) if written == msg_id and count.isdigit() else None
