"""Start a real `kernelsvc start` process and talk to it with jupyter_client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from tests.helpers.waiting import wait_until

KERNELSVC = [sys.executable, "-m", "kernelsvc.supervisor"]


@dataclass
class RunningKernel:
    proc: subprocess.Popen
    connection_file: Path
    stderr_path: Path
    known_pids: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def remember_children(self) -> set[int]:
        """Record the worker and its children, so teardown can kill them by pid."""
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        self.known_pids.update(k.pid for k in kids)
        return {k.pid for k in kids}

    def client(self, wait_for_worker: bool = True) -> BlockingKernelClient:
        kc = BlockingKernelClient()
        kc.load_connection_file(str(self.connection_file))
        # wait_for_ready calls the kernel dead after one late heartbeat (1 s by default,
        # read when the channel starts); on a loaded 2-core CI machine that flakes.
        # Heartbeats are checked on their own by tests.helpers.heartbeat.HeartbeatMonitor.
        kc.hb_channel.time_to_dead = 5.0
        kc.start_channels()
        kc.wait_for_ready(timeout=30)  # the supervisor answers kernel_info at once
        if wait_for_worker:
            wait_until(lambda: worker_ready(kc), 30, "the first worker")
        self.remember_children()
        return kc

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """Kill by pid: the supervisor's group, then every process we saw under it."""
        self.remember_children()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        for pid in self.known_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not any(alive(p) for p in self.known_pids), 10, "kernel processes")


def worker_ready(kc: BlockingKernelClient) -> bool:
    """Has a worker said it is ready (kernel_info says which state it is in)?"""
    info = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]
    return info["worker_state"] in ("idle", "busy")


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped."""
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def write_conn(path: Path, **overrides: Any) -> Path:
    write_connection_file(str(path), ip="127.0.0.1", key=os.urandom(16).hex().encode(), **overrides)
    return path


def start_kernel(
    tmp_path: Path, *extra: str, conn: Path | None = None, env: dict | None = None
) -> RunningKernel:
    """Launch `kernelsvc start -f CONN` in its own process group."""
    connection_file = conn if conn is not None else write_conn(tmp_path / "conn.json")
    stderr_path = tmp_path / f"kernelsvc-{os.urandom(3).hex()}.log"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [*KERNELSVC, "start", "-f", str(connection_file), "--log-format", "json", *extra],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
            env=env,
        )
    return RunningKernel(proc=proc, connection_file=connection_file, stderr_path=stderr_path)


def collect_iopub(kc: BlockingKernelClient, msg_id: str, timeout: float = 10) -> list[dict]:
    """IOPub messages parented to ``msg_id``, up to and including its idle status."""
    msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs


def get_reply(kc: BlockingKernelClient, msg_id: str, timeout: float = 10, channel="shell") -> dict:
    get = kc.get_shell_msg if channel == "shell" else kc.get_control_msg
    while True:
        msg = get(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def execute(kc: BlockingKernelClient, code: str, timeout: float = 20, **kwargs) -> tuple:
    """Run ``code``; return (reply, iopub messages for it)."""
    msg_id = kc.execute(code, **kwargs)
    reply = get_reply(kc, msg_id, timeout)
    return reply, collect_iopub(kc, msg_id, timeout)


def kernel_statuses_until_idle(kc: BlockingKernelClient, timeout: float = 30) -> list[str]:
    """Kernel-wide IOPub statuses (no parent) up to the next idle: a new worker is ready."""
    seen = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["msg_type"] == "status" and not msg["parent_header"]:
            seen.append(msg["content"]["execution_state"])
            if seen[-1] == "idle":
                return seen
