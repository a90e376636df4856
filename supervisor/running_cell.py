"""The main shell's cell about to run user code, in a file of the private directory.

Before an announced cell runs, the worker writes its msg_id and number here (one pwrite
into the page cache, which outlives the process). When the worker dies in the cell, the
supervisor reads the number for the crash reply; if the cell's execute_input never reached
it (``os._exit`` can beat ZMQ's I/O thread to the socket), it announces the cell too.
"""

from __future__ import annotations

import os

from kernelsvc.supervisor.record_file import RecordFile

RUNNING_CELL = "running-cell"


class RunningCellWriter(RecordFile):
    """The worker's side, rewritten for every announced cell."""

    def __init__(self, private_dir: str) -> None:
        super().__init__(os.path.join(private_dir, RUNNING_CELL))

    def note(self, msg_id: str, count: int) -> None:
        self.write(f"{count} {msg_id}")


def running_cell_count(private_dir: str | os.PathLike[str], msg_id: str) -> int | None:
    """The number the worker gave cell ``msg_id`` before it ran, if it got that far."""
    try:
        with open(os.path.join(private_dir, RUNNING_CELL), "rb") as f:
            count, _, written = f.read().decode(errors="replace").strip().partition(" ")
    except OSError:
        return None
    return int(count) if written == msg_id and count.isdigit() else None
