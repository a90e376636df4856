"""Start debugpy's debugger (pydevd) inside the worker, speaking DAP on a loopback port.

No adapter subprocess: debugpy's adapter daemonizes out of the worker's process group,
so it would outlive a killed worker. In-process, the debugger dies with its worker.

pydevd traces every thread but the ones marked here: the kernel's own threads (IO,
fd capture, control, history) must keep running while user code is stopped. The
listening port asks for a random access token, so another local user who finds it
cannot attach. Imported only when a debug session starts, never in the fork server.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import threading
from typing import Any

from kernelsvc.worker.dap import untraced

START_TIMEOUT = 30.0
HOST = "127.0.0.1"
# The kernel's service threads. Not every "kernelsvc-*" thread: subshells run user code.
KERNEL_THREAD_NAMES = frozenset({"kernelsvc-io", "kernelsvc-fd1", "kernelsvc-fd2",
                                 "kernelsvc-control", "IPythonHistorySavingThread"})


def kernel_packages() -> list[str]:
    """Directories of the kernel's own code: never traced, never stepped into."""
    import kernelsvc.supervisor
    import kernelsvc.worker

    return [os.path.dirname(os.path.abspath(m.__file__))
            for m in (kernelsvc.worker, kernelsvc.supervisor)]


def internal_rules() -> list[dict[str, Any]]:
    """DAP attach rules: the kernel and IPython are never the user's code, even without
    justMyCode, so stepping past a cell's end does not wander into them."""
    import IPython

    paths = [*kernel_packages(), os.path.dirname(os.path.abspath(IPython.__file__))]
    return [{"path": path, "include": False} for path in paths]


def mark_kernel_threads() -> None:
    """The calling thread (control) and the kernel's service threads stay untraced."""
    untraced(threading.current_thread())
    for thread in threading.enumerate():
        if thread.name in KERNEL_THREAD_NAMES:
            untraced(thread)


@contextlib.contextmanager
def quiet_file_validation():
    """pydevd warns on stderr (the user's cell output) about frozen stdlib modules."""
    key = "PYDEVD_DISABLE_FILE_VALIDATION"
    old = os.environ.get(key)
    os.environ[key] = "1"  # read once, when pydevd is imported
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def start() -> tuple[tuple[str, int], str]:
    """Start pydevd's DAP server; return its address and the token clients must send."""
    mark_kernel_threads()
    with quiet_file_validation():
        import debugpy.server  # noqa: F401  (puts debugpy's vendored pydevd on the path)
        import pydevd
    os.register_at_fork(after_in_child=untrace_child)
    token = secrets.token_hex(32)
    outcome: dict[str, Any] = {}
    # settrace traces the thread that calls it: a throwaway thread, not control.
    starter = untraced(threading.Thread(target=_settrace, args=(pydevd, token, outcome),
                                        name="kernelsvc-debug-start", daemon=True))
    starter.start()
    starter.join(START_TIMEOUT)
    if "address" not in outcome:
        raise RuntimeError(f"the debugger did not start: {outcome.get('error', 'timed out')}")
    return outcome["address"], token


def _settrace(pydevd, token: str, outcome: dict[str, Any]) -> None:
    try:
        can_pick_port = hasattr(pydevd.PyDB, "wait_for_server_socket_ready")
        port = 0 if can_pick_port else free_port()
        pydevd.settrace(
            host=HOST, port=port, suspend=False, patch_multiprocessing=False,
            block_until_connected=False, wait_for_ready_to_run=False, notify_stdin=False,
            access_token=token, protocol="dap",
            dont_trace_start_patterns=tuple(kernel_packages()) + (debugpy_dir(),),
        )
        if can_pick_port:
            py_db = pydevd.get_global_debugger()
            py_db.wait_for_server_socket_ready()
            port = py_db._server_socket_name[1]
        outcome["address"] = (HOST, port)
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"


def untrace_child() -> None:
    """A forked child (multiprocessing) has none of the debugger's threads: a breakpoint
    there would wait forever for a client. It runs untraced."""
    sys.settrace(None)
    threading.settrace(None)
    try:
        from _pydev_bundle import pydev_monkey
        from _pydevd_bundle.pydevd_constants import PYDEVD_USE_SYS_MONITORING

        pydev_monkey.undo_patch_thread_modules()  # threads it starts are not traced either
        if PYDEVD_USE_SYS_MONITORING:  # Python 3.12+: pydevd uses sys.monitoring instead
            from _pydevd_sys_monitoring import pydevd_sys_monitoring

            pydevd_sys_monitoring.stop_monitoring(all_threads=True)
    except Exception:
        pass


def debugpy_dir() -> str:
    import debugpy

    return os.path.dirname(os.path.abspath(debugpy.__file__))


def free_port() -> int:
    """Older pydevd cannot report the port it chose: choose one for it."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def after_cell() -> None:
    """On the thread that ran a cell, once it is over (IPython's post_run_cell)."""
    import pydevd
    from _pydevd_bundle.pydevd_additional_thread_info import set_additional_thread_info
    from _pydevd_bundle.pydevd_constants import PYDEVD_USE_SYS_MONITORING
    from _pydevd_bundle.pydevd_thread_lifecycle import internal_run_thread

    py_db = pydevd.get_global_debugger()
    if py_db is None:
        return
    # A step that ran off the end of the cell would stop at the next cell's first line.
    internal_run_thread(threading.current_thread(), set_additional_thread_info)
    # An interrupt raised inside the debugger's wait (or its trace function) turns
    # tracing off for this thread: breakpoints would never hit again.
    if not PYDEVD_USE_SYS_MONITORING and sys.gettrace() is None:
        py_db.enable_tracing()
