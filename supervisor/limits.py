"""Resource limits: sizes, the cgroup's memory limit, and a worker tree's memory use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psutil

from kernelsvc.supervisor.cgroup import own_cgroup_dirs

UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
SUPERVISOR_ROOM = 128 * 2**20  # what a cgroup-derived limit leaves for the supervisor
NO_LIMIT = 2**60  # cgroup v1 says "no limit" with a huge number


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5GiB', '1048576' -> bytes (binary units, as cgroups use)."""
    match = SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M or 2G)")
    number, unit = match.groups()
    return int(float(number) * UNITS[unit.upper()])


def format_bytes(count: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            value = count / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(count)} B"


def cgroup_memory_limit() -> int | None:
    """memory.max (v2) or memory.limit_in_bytes (v1) of our cgroup, if one is set."""
    for directory in own_cgroup_dirs():
        for name in ("memory.max", "memory.limit_in_bytes"):
            value = _read_number(directory / name)
            if value is not None:
                return value if value < NO_LIMIT else None
    return None


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return NO_LIMIT
    try:
        return int(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    memory_source: str = "none"  # flag | cgroup | none
    cell_timeout: float | None = None
    interrupt_timeout: float = 3.0
    warn_fraction: float = 0.8

    def describe(self) -> dict[str, object]:
        """For kernel_info and the logs."""
        return {
            "memory_limit_bytes": self.memory_bytes,
            "memory_limit": format_bytes(self.memory_bytes) if self.memory_bytes else None,
            "memory_limit_source": self.memory_source,
            "cell_timeout_s": self.cell_timeout,
            "interrupt_timeout_s": self.interrupt_timeout,
        }


def resolve_limits(memory_limit: str | None, cell_timeout: float | None,
                   interrupt_timeout: float) -> Limits:
    if memory_limit:
        memory, source = parse_size(memory_limit), "flag"
    else:
        cgroup = cgroup_memory_limit()
        memory = max(cgroup - SUPERVISOR_ROOM, cgroup // 2) if cgroup else None
        source = "cgroup" if memory else "none"
    return Limits(memory_bytes=memory, memory_source=source, cell_timeout=cell_timeout,
                  interrupt_timeout=interrupt_timeout)


def tree_rss(pid: int) -> int:
    """Resident memory of a worker and every process under it (what a cell costs)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


__all__ = ["Limits", "format_bytes", "parse_size", "resolve_limits", "tree_rss"]
