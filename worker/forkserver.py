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
    with stack_data and pygments: ~50 ms the first time in a process, ~2.5 ms after, mostly
    recomputing pure functions for every traceback. Memoized here and by
    memo_executing_node_style (~0.5 ms a traceback, any error's); the output is unchanged."""
    try:
        import pygments.lexer  # noqa: F401 (what the helpers patch)
    except ImportError:
        return
    _memo_keyword_regexes()
    _memo_closest_colours()
    _memo_formatter_styles()
    _cell_frames_have_no_module()


def _memo_keyword_regexes() -> None:
    """stack_data builds a new lexer class for every traceback, so pygments optimizes the
    same keyword lists into the same regexes again."""
    import pygments.lexer
    import pygments.regexopt

    regex_opt = pygments.regexopt.regex_opt
    if pygments.lexer.regex_opt is not regex_opt:  # what pygments' `words` calls
        return
    optimized = functools.lru_cache(maxsize=1024)(
        lambda words, prefix, suffix: regex_opt(list(words), prefix, suffix))
    pygments.lexer.regex_opt = pygments.regexopt.regex_opt = (
        lambda words, prefix="", suffix="": optimized(tuple(words), prefix, suffix))


def _memo_closest_colours() -> None:
    """Each new Terminal256Formatter maps the same colours to the same palette entries."""
    from pygments.formatters.terminal256 import Terminal256Formatter

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


def memo_executing_node_style() -> None:
    """IPython asks stack_data for the same style plus a highlight for every traceback,
    and gets a new class each time (pygments processes every token's style again).
    Not at preload (importing stack_data would delay the fork server's start ~6 ms): at a
    worker's first traceback, which imports it anyway, and in warm_up_tracebacks."""
    try:
        import stack_data
        import stack_data.core
    except ImportError:
        return

    make = stack_data.core.style_with_executing_node
    if getattr(make, "memoized", False):
        return
    made = functools.lru_cache(maxsize=64)(make)

    def style_with_executing_node(style, modifier):
        try:
            return made(style, modifier)
        except TypeError:  # an unhashable argument: not memoized
            return make(style, modifier)
    style_with_executing_node.memoized = True
    stack_data.style_with_executing_node = style_with_executing_node
    stack_data.core.style_with_executing_node = style_with_executing_node


def _memo_formatter_styles() -> None:
    """IPython builds a new Terminal256Formatter for every traceback, which computes the
    escape sequences of every token type again: the same for the same style and options."""
    from pygments.formatters.terminal256 import Terminal256Formatter

    setup = Terminal256Formatter._setup_styles
    computed: dict[tuple, dict[str, tuple[str, str]]] = {}

    def memo_setup_styles(self):
        if type(self) is not Terminal256Formatter:
            return setup(self)
        key = (self.style, self.usebold, self.useunderline, self.useitalic)
        strings = computed.get(key)
        if strings is None:
            setup(self)
            if len(computed) < 64:  # styles are classes: a few, unless made per call
                computed[key] = dict(self.style_string)
        else:
            self.style_string.update(strings)
    Terminal256Formatter._setup_styles = memo_setup_styles


def _cell_frames_have_no_module() -> None:
    """IPython calls inspect.getmodule for each frame of a traceback (to hide its own), and
    inspect.getsourcelines calls it again. For a file no module came from, getmodule scans
    all of sys.modules (~0.15 ms per 500 modules, ~0.7 ms a traceback). A cell's frame (a
    file IPython put in linecache, with no mtime) belongs to no module: None at once,
    unless a module was found for that file before."""
    import inspect
    import linecache

    getmodule = inspect.getmodule
    if getattr(getmodule, "cells_skipped", False):
        return

    def cell_aware_getmodule(object, _filename=None):
        code = getattr(object, "f_code", None) if inspect.isframe(object) else None
        if code is not None and _filename in (None, code.co_filename):
            entry = linecache.cache.get(code.co_filename)
            if entry is not None and len(entry) == 4 and entry[1] is None \
                    and code.co_filename not in inspect.modulesbyfile:
                return None
        return getmodule(object, _filename)
    cell_aware_getmodule.cells_skipped = True
    inspect.getmodule = cell_aware_getmodule


def warm_up_tracebacks() -> None:
    """Format one traceback, so that workers fork with what the first one loads (~50 ms:
    stack_data, pygments' lexer and styles) already loaded."""
    from IPython.core import ultratb

    memo_executing_node_style()
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
