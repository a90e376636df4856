"""Cells compiled under the file names JupyterLab's debugger computes for them.

The debugger protocol names a cell's file ``tmpFilePrefix + murmur2(code, hashSeed) +
tmpFileSuffix`` (values the kernel announces in ``debugInfo``). JupyterLab sets a
breakpoint in a cell by that path, so the code must have been compiled under the same
name, whether or not a debug session was running when the cell ran.

The prefix names the supervisor, not the worker, so the names survive a worker restart.
"""

from __future__ import annotations

import functools
import os
import re
import stat

from IPython.core.compilerop import CachingCompiler

from kernelsvc.supervisor import protocol
from kernelsvc.supervisor.kernel_info import debugger_available
from kernelsvc.worker.murmur import murmur2

HASH_SEED = protocol.CELL_HASH_SEED  # JupyterLab reads it from debugInfo
SUFFIX = ".py"
MAX_HASHED_CHARS = protocol.MAX_HASHED_CHARS
_LEADING_SPACE = re.compile(r"\s*")
DEBUGGER = debugger_available()  # looked up once, in the fork server (debugpy not imported)


@functools.cache
def _cell_dir(pid: int) -> str:
    return protocol.cell_dir(os.getppid())


def cell_dir() -> str:
    """Per user and supervisor; computed in the worker, never in the fork server."""
    return _cell_dir(os.getpid())


def prefix() -> str:
    return cell_dir() + os.sep


def cell_filename(code: str) -> str | None:
    """The path the debugger protocol gives ``code``; None for cells too big to hash."""
    if len(code) > MAX_HASHED_CHARS:
        return None
    return f"{prefix()}{murmur2(code, HASH_SEED)}{SUFFIX}"


def prepare_cell_dir() -> str:
    """Create the directory (0700) and refuse one that another user could control."""
    path = cell_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() \
            or info.st_mode & 0o077:
        raise PermissionError(f"{path} is not a private directory of this user")
    return path


def leading_blank_lines(code: str) -> int:
    """Whitespace-only lines at the start of ``code`` (reads only that far: cells can be
    100 MB)."""
    head = code[:_LEADING_SPACE.match(code).end()]
    lines = head.splitlines(keepends=True)
    if lines and lines[-1] == lines[-1].splitlines()[0]:
        lines.pop()  # no line break: the indent of the first line of code
    return len(lines)


class CellCompiler(CachingCompiler):
    """IPython's compiler, naming cells by the debugger protocol's hash.

    IPython drops a cell's leading blank lines before compiling; they are put back as
    line numbers, so breakpoints (and tracebacks) count lines as the cell shows them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._dropped_lines: dict[str, int] = {}

    def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
        # Hashing costs ~10 ms per 100 KB of cell: only when a debugger could use the name.
        name = cell_filename(raw_code) if DEBUGGER else None
        return name or super().get_code_name(raw_code, transformed_code, number)

    def cache(self, transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
        raw = transformed_code if raw_code is None else raw_code
        dropped = leading_blank_lines(raw) - leading_blank_lines(transformed_code)
        padded = "\n" * dropped + transformed_code if dropped > 0 else transformed_code
        name = super().cache(padded, number, raw_code)
        if dropped > 0:
            self._dropped_lines[name] = dropped
        else:
            self._dropped_lines.pop(name, None)
        return name

    def ast_parse(self, source: str, filename: str = "<unknown>", symbol: str = "exec"):
        dropped = self._dropped_lines.get(filename, 0)
        return super().ast_parse("\n" * dropped + source, filename, symbol)
