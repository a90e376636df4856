"""The supervisor's settings, fixed at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kernelsvc.supervisor.restart_policy import RestartPolicy


@dataclass(frozen=True)
class Config:
    connection_file: Path
    ip: str = "127.0.0.1"
    worker_stop_timeout: float = 0.5  # seconds a worker gets to exit before SIGKILL
    worker_boot_timeout: float = 30.0  # seconds from spawn to READY before we give up
    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
