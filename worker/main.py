"""The worker process: connect to the supervisor, build the shell, serve requests."""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import logging
import os
import signal
import sys
import time
from typing import Any

from jupyter_client.session import Session

from kernelsvc.supervisor.kernel_info import kernel_info_content
from kernelsvc.supervisor.protocol import INTERRUPT_TARGET, Channel, SysEvent
from kernelsvc.supervisor.running_cell import RunningCellWriter
from kernelsvc.worker import interrupts
from kernelsvc.worker.link import Link

PR_SET_PDEATHSIG = 1
CONFIG_TIMEOUT = 10.0
REPARENT_TIMEOUT = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kernelsvc.worker")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    return parser.parse_args(argv)


def die_with_parent(parent_pid: int) -> None:
    """No orphans: the kernel kills us if the supervisor dies (and we check we are not late).

    Forked by the fork server's short-lived intermediate, we become the supervisor's child
    only once the intermediate has exited; PDEATHSIG must be set after that, or the
    intermediate's exit would fire it.
    """
    deadline = time.monotonic() + REPARENT_TIMEOUT
    while os.getppid() != parent_pid:
        if time.monotonic() > deadline or os.getppid() == 1:
            os._exit(1)  # the supervisor is gone (or is not our subreaper)
        time.sleep(0.0005)  # the intermediate is about to exit; no event to wait on
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def prefer_as_oom_victim() -> None:
    """If the kernel's OOM killer must act, it should take the worker, not the supervisor."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def keep_crash_reports() -> None:
    """faulthandler writes to the real stderr, which survives our own fd 2 capture."""
    crash_fd = os.dup(2)
    crash_file = os.fdopen(crash_fd, "w", buffering=1, closefd=True)
    faulthandler.enable(file=crash_file, all_threads=False)  # the crashing thread, readable
    # Library log records (comm, traitlets...) are for the operator, not the notebook.
    logging.basicConfig(stream=crash_file, level=logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    sys.modules[__name__].crash_file = crash_file  # keep it open for the process's life


def receive_config(link: Link) -> dict[str, Any]:
    link.send_sys(SysEvent.HELLO)
    channel, event = link.requests.get(timeout=CONFIG_TIMEOUT)
    if channel != Channel.SYS or event.get("event") != SysEvent.CONFIG:
        raise RuntimeError("expected config from the supervisor")
    return event


def make_sessions(config: dict[str, Any]) -> tuple[Session, Session]:
    """A signing session for what we send, and a reader for what the supervisor forwards."""
    signer = Session(
        key=config["key"].encode(),
        signature_scheme=config["signature_scheme"],
        session=config["session"],
        username="kernel",
        check_pid=False,
    )
    reader = Session(key=config["key"].encode(), signature_scheme=config["signature_scheme"],
                     session=config["session"], check_pid=False)
    return signer, reader


def main(argv: list[str] | None = None) -> None:
    started = time.monotonic()
    args = parse_args(argv)
    die_with_parent(args.parent_pid)
    prefer_as_oom_victim()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the shell is ready for it
    os.dup2(2, 1)  # boot-time output of any kind lands in the supervisor's stderr tail
    keep_crash_reports()
    link = Link(args.endpoint, args.identity.encode())
    link.start()
    config = receive_config(link)
    signer, reader = make_sessions(config)

    from kernelsvc.worker.serve import build_kernel, serve, start_threads

    kernel, shell = build_kernel(link, signer, config)
    interrupts.install(interrupt_target_file(args.endpoint))
    kernel.running_cell = RunningCellWriter(private_dir(args.endpoint))
    start_threads(kernel, shell, reader)  # before READY: requests may follow at once
    link.send_sys(
        SysEvent.READY,
        kernel_info=kernel_info(shell),
        startup_ms=(time.monotonic() - started) * 1000,
        pid=os.getpid(),
    )
    serve(kernel, shell, reader)


def private_dir(endpoint: str) -> str:
    """The supervisor's private dir: the worker's socket, the interrupt target, the running
    cell."""
    return os.path.dirname(endpoint.removeprefix("ipc://"))


def interrupt_target_file(endpoint: str) -> str:
    return os.path.join(private_dir(endpoint), INTERRUPT_TARGET)


def kernel_info(shell) -> dict[str, Any]:
    import IPython

    return kernel_info_content(IPython.__version__, shell.banner)
