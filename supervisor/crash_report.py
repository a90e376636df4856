"""What the user reads when the worker dies: what happened, and the worker's last words."""

from __future__ import annotations

import re

from kernelsvc.supervisor.protocol import CELL_HASH_SEED, MAX_HASHED_CHARS
from kernelsvc.supervisor.worker_handle import ExitInfo
from kernelsvc.worker.murmur import murmur2

# Cells are compiled as ".../kernelsvc-cells-UID-PID/HASH.py" (the debugger's names, see
# worker/cellfiles.py) or IPython's "<ipython-input-N-hash>"; faulthandler prints frames.
CELL_FRAME = re.compile(
    r'File "(<ipython-input-\d+-[0-9a-f]+>|[^"]*/kernelsvc-cells-[^"/]+/\d+\.py)", '
    r'line (\d+)')


def crash_error(exit_info: ExitInfo, stderr_lines: list[str], code: str | None) -> dict:
    """The ``error`` content (ename, evalue, traceback) for the request the worker died on."""
    evalue = f"{exit_info.describe()}; a fresh worker is starting, variables were lost"
    traceback = [f"WorkerDied: {evalue}"]
    culprit = _crashing_line(stderr_lines, code)
    if culprit:
        traceback.append(f"The cell was running line {culprit[0]}: {culprit[1].strip()}")
    tail = _last_report(stderr_lines)
    if tail:
        traceback.append("The worker's last words on stderr:\n" + "\n".join(tail))
    return {"ename": "WorkerDied", "evalue": evalue, "traceback": traceback}


def boot_failure_reason(exit_info: ExitInfo, stderr_lines: list[str]) -> str:
    """One line saying the worker could not start, then its last words."""
    how = exit_info.describe().removeprefix("worker ")
    return "\n".join([f"the worker failed to start ({how})", *_last_report(stderr_lines)])


def _last_report(stderr_lines: list[str]) -> list[str]:
    """From the last 'Fatal Python error' on, if there is one; else the last lines."""
    lines = [line for line in stderr_lines if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    return lines[starts[-1]:] if starts else lines[-20:]


def _crashing_line(stderr_lines: list[str], code: str | None) -> tuple[int, str] | None:
    """The most recent frame of this cell in a faulthandler dump, with that line of the cell.
    Cells are found by their file name (a hash of their text) when they have one, so a crash
    in one shell's cell is not quoted as a line of another shell's."""
    if not code:
        return None
    lines = code.splitlines()
    own_file = f"/{murmur2(code, CELL_HASH_SEED)}.py" if len(code) <= MAX_HASHED_CHARS else None
    for line in stderr_lines:
        match = CELL_FRAME.search(line)
        if match is None:
            continue
        hashed = match.group(1).endswith(".py")
        if hashed and (own_file is None or not match.group(1).endswith(own_file)):
            continue  # another cell's frame
        number = int(match.group(2))
        if 1 <= number <= len(lines):
            return number, lines[number - 1]
    return None
