"""The fork server: imports IPython and the worker once, then forks a worker per request.

Importing IPython costs a few hundred milliseconds; forking a process that already
holds it costs a few. So restarts fork from here. This process must never create a
thread, a ZMQ context or a SQLite connection (a fork copies only the calling
thread): the shell and the sockets are built in the child.

Protocol, over a SOCK_SEQPACKET socket inherited from the supervisor:

    server -> supervisor  {"ready": pid}                  imports done
    supervisor -> server  {"identity": ..., "endpoint": ...}
    server -> supervisor  {"forked": worker_pid} + the worker's stderr read end (SCM_RIGHTS)

Each worker is forked twice (server -> intermediate -> worker) and the intermediate
exits at once, so the worker is re-parented to the supervisor (a child subreaper):
the supervisor reaps it and reads its exit status directly.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import importlib
import json
import os
import signal
import socket
import sys
import traceback

PR_SET_PDEATHSIG = 1
WARM_UP_AFTER = 2.0  # seconds after the first worker
PRELOAD = (
    "IPython.core.interactiveshell",
    "IPython.core.completer",
    "jupyter_client.session",
    "zmq",
    "comm",
    "kernelsvc.worker.main",
    "kernelsvc.worker.serve",
    # What a new InteractiveShell imports on first use (about 10 ms a worker otherwise).
    # sqlite3 is only imported: the history database is opened in the worker.
    "IPython.core.application",
    "IPython.core.completerlib",
    "IPython.core.magics",
    "IPython.core.oinspect",
    "sqlite3",
    "unicodedata",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kernelsvc.worker.forkserver")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--preload", default="", help="comma-separated extra modules")
    return parser.parse_args(argv)


def die_with(parent_pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def preload(extra: str) -> None:
    for name in (*PRELOAD, *filter(None, (m.strip() for m in extra.split(",")))):
        importlib.import_module(name)
    faster_tracebacks()


def faster_tracebacks() -> None:
    """Interrupting a cell ends it with a KeyboardInterrupt traceback that IPython formats
    with stack_data and pygments: ~50 ms the first time in a process, ~8 ms after, mostly
    pygments recomputing the same things: stack_data builds a new lexer class for every
    traceback, so pygments optimizes its keyword regexes again, and each new
    Terminal256Formatter maps the same colours again. Both are pure functions: memoized
    here, ~3 ms a traceback (any error's, not only an interrupt's)."""
    try:
        import pygments.lexer
        import pygments.regexopt
        from pygments.formatters.terminal256 import Terminal256Formatter
    except ImportError:
        return
    regex_opt = pygments.regexopt.regex_opt
    if pygments.lexer.regex_opt is regex_opt:  # what pygments' `words` calls
        optimized = functools.lru_cache(maxsize=1024)(
            lambda words, prefix, suffix: regex_opt(list(words), prefix, suffix))
        pygments.lexer.regex_opt = pygments.regexopt.regex_opt = (
            lambda words, prefix="", suffix="": optimized(tuple(words), prefix, suffix))
    closest = Terminal256Formatter._closest_color
    colours: dict[tuple[int, int, int], int] = {}

    def memo_closest_color(self, r, g, b):
        if type(self) is not Terminal256Formatter:  # a subclass may map colours otherwise
            return closest(self, r, g, b)
        index = colours.get((r, g, b))
        if index is None:
            index = colours[(r, g, b)] = closest(self, r, g, b)
        return index
    Terminal256Formatter._closest_color = memo_closest_color


def warm_up_tracebacks() -> None:
    """Format one traceback, so that workers fork with what the first one loads (~50 ms:
    stack_data, pygments' lexer and styles) already loaded."""
    from IPython.core import ultratb

    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        etype, value, tb = sys.exc_info()
        ultratb.AutoFormattedTB(mode="Context", theme_name="neutral").structured_traceback(
            etype, value, tb)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    die_with(args.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for workers
    sock = socket.socket(fileno=args.fd)
    preload(args.preload)
    sock.send(json.dumps({"ready": os.getpid()}).encode())
    warm_up = warmed = False
    while True:
        # Once the first worker has had time to start (not sharing the CPU with it), load
        # what its first traceback loads, so that the workers forked later have it.
        sock.settimeout(WARM_UP_AFTER if warm_up else None)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            warm_up_tracebacks()
            warm_up, warmed = False, True
            continue
        if not data:
            os._exit(0)  # the supervisor is gone
        fork_worker(sock, json.loads(data), args.parent_pid)
        warm_up = not warmed


def fork_worker(sock: socket.socket, request: dict, supervisor_pid: int) -> None:
    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        worker = os.fork()
        if worker == 0:
            run_worker(sock, read_end, write_end, request, supervisor_pid)
        socket.send_fds(sock, [json.dumps({"forked": worker}).encode()], [read_end])
        os._exit(0)
    os.close(read_end)
    os.close(write_end)
    os.waitpid(intermediate, 0)


def run_worker(sock, read_end: int, write_end: int, request: dict, supervisor_pid: int) -> None:
    """In the forked worker: fresh session and stderr, then the worker's own main."""
    code = 1
    try:
        sock.close()
        os.close(read_end)
        os.setsid()  # its own process group: interrupts and kills reach user subprocesses
        os.dup2(write_end, 2)
        os.close(write_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from kernelsvc.worker.main import main as worker_main

        worker_main([
            "--endpoint", request["endpoint"],
            "--identity", request["identity"],
            "--parent-pid", str(supervisor_pid),
        ])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
