"""The words a user reads when the worker dies."""

from __future__ import annotations

from kernelsvc.supervisor.crash_report import crash_error
from kernelsvc.supervisor.protocol import CELL_HASH_SEED
from kernelsvc.supervisor.worker_handle import ExitInfo, exit_info_from_returncode
from kernelsvc.worker.murmur import murmur2

FAULTHANDLER = [
    "noise before",
    "Fatal Python error: Segmentation fault",
    "",
    "Current thread 0x00007f (most recent call first):",
    '  File "/usr/lib/python3.11/ctypes/__init__.py", line 519 in string_at',
    '  File "<ipython-input-3-0a1b2c3d4e5f>", line 2 in <module>',
    '  File "/site-packages/IPython/core/interactiveshell.py", line 3577 in run_code',
]


def test_exit_descriptions():
    assert exit_info_from_returncode(1).describe() == "worker exited with code 1"
    assert exit_info_from_returncode(-11).describe() == "worker killed by SIGSEGV"
    assert ExitInfo(signal=9).signal_name == "SIGKILL"


def test_segfault_report_quotes_faulthandler_and_the_cell_line():
    error = crash_error(ExitInfo(signal=11), FAULTHANDLER, "import ctypes\nctypes.string_at(0)")
    assert error["ename"] == "WorkerDied"
    assert error["evalue"].startswith("worker killed by SIGSEGV")
    assert error["traceback"][1] == "The cell was running line 2: ctypes.string_at(0)"
    assert error["traceback"][2].splitlines()[1] == "Fatal Python error: Segmentation fault"
    assert "noise before" not in error["traceback"][2]


def test_report_without_stderr_or_code():
    error = crash_error(ExitInfo(code=1), [], None)
    assert error["traceback"] == [f"WorkerDied: {error['evalue']}"]


def hashed_dump(code: str) -> list[str]:
    name = f"/tmp/kernelsvc-cells-0-4242/{murmur2(code, CELL_HASH_SEED)}.py"
    return [line.replace("<ipython-input-3-0a1b2c3d4e5f>", name) for line in FAULTHANDLER]


def test_the_cell_line_is_found_under_the_debuggers_cell_file_names():
    code = "import ctypes\nctypes.string_at(0)"
    error = crash_error(ExitInfo(signal=11), hashed_dump(code), code)
    assert error["traceback"][1] == "The cell was running line 2: ctypes.string_at(0)"


def test_a_frame_of_another_cell_is_not_quoted_as_this_ones():
    """A subshell's cell crashed the worker: the main shell's cell was not on line 2."""
    error = crash_error(ExitInfo(signal=11), hashed_dump("import ctypes\nctypes.string_at(0)"),
                        "x = 1\nwait_for_something()")
    assert not any(line.startswith("The cell was running") for line in error["traceback"])
