"""What the kernel's cgroup says about memory: the OOM killer's count (v2 and v1)."""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def own_cgroup_dirs(proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[Path]:
    """Where our memory controller's files may live, most specific first."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return []
    dirs = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # cgroup v2 (unified)
            dirs += [CGROUP_ROOT / rel, CGROUP_ROOT]
        elif "memory" in controllers.split(","):  # cgroup v1
            dirs += [CGROUP_ROOT / "memory" / rel, CGROUP_ROOT / "memory"]
    return dirs


def oom_kill_count() -> int | None:
    """How many processes the OOM killer has killed in our cgroup (None: cannot tell)."""
    for directory in own_cgroup_dirs():
        for name in ("memory.events", "memory.oom_control"):
            count = _read_field(directory / name, "oom_kill")
            if count is not None:
                return count
    return None


def _read_field(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == field:
                return int(value)
    except (OSError, ValueError):
        return None
    return None
