"""The supervisor's settings, fixed at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kernelsvc.supervisor.gateway import GatewayConfig
from kernelsvc.supervisor.limits import Limits
from kernelsvc.supervisor.restart_policy import RestartPolicy


class RestartMode(StrEnum):
    IN_PLACE = "in-place"  # shutdown_request(restart=True): a fresh worker, same sockets
    EXIT = "exit"  # ...: exit promptly, for a manager that relaunches the process


def default_restart_mode(environ: dict[str, str]) -> RestartMode:
    """Under jupyter_client's KernelManager (it sets JPY_PARENT_PID), the manager waits for
    the process to exit on restart and kills it after 2.5 s: so exit, promptly."""
    return RestartMode.EXIT if "JPY_PARENT_PID" in environ else RestartMode.IN_PLACE


@dataclass(frozen=True)
class Config:
    connection_file: Path
    ip: str = "127.0.0.1"
    worker_stop_timeout: float = 0.5  # seconds a worker gets to exit before SIGKILL
    worker_boot_timeout: float = 30.0  # seconds from spawn to READY before we give up
    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    restart_mode: RestartMode = RestartMode.IN_PLACE
    limits: Limits = field(default_factory=Limits)
    preload: str = ""  # modules the fork server imports once, so restarts do not pay for them
    max_message_size: int = 2**30  # bytes; larger inbound messages are refused
    max_output_bytes: int | None = None  # per request: head and tail kept, middle omitted
    gateway: GatewayConfig | None = None  # Enterprise Gateway launcher mode
