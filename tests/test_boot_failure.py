"""A worker that cannot start: backoff, then a visible dead state, then recovery."""

from __future__ import annotations

import os

import pytest

from tests.helpers.heartbeat import HeartbeatMonitor
from tests.helpers.kernel import execute, get_reply, start_kernel

STARTUP = """
import os, pathlib
if pathlib.Path({marker!r}).exists():
    print("startup refuses to run", file=os.fdopen(os.dup(2), "w"), flush=True)
    os._exit(7)
"""


@pytest.mark.timeout(90)
def test_boot_failure_loop_dead_state_and_recovery(tmp_path):
    marker = tmp_path / "broken"
    marker.touch()
    ipythondir = tmp_path / "ipython"
    startup = ipythondir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-break.py").write_text(STARTUP.format(marker=str(marker)))
    env = {**os.environ, "IPYTHONDIR": str(ipythondir)}
    kernel = start_kernel(tmp_path, "--boot-retries", "2", "--max-backoff", "0.3", env=env)
    try:
        kc = kernel.client(wait_for_worker=False)  # answered even with no worker
        with HeartbeatMonitor(kernel.connection_file) as hb:
            msg_id = kc.execute("1 + 1")
            reply = get_reply(kc, msg_id, 30)
            content = reply["content"]
            assert content["status"] == "error" and content["ename"] == "WorkerUnavailable"
            assert content["evalue"] == "the worker failed to start (exited with code 7)"
            assert "startup refuses to run" in content["traceback"]
            saw_dead = False
            while not saw_dead:
                msg = kc.get_iopub_msg(timeout=30)
                saw_dead = msg["msg_type"] == "status" and \
                    msg["content"]["execution_state"] == "dead"
            marker.unlink()  # the cause goes away: a later retry succeeds
            while True:
                msg = kc.get_iopub_msg(timeout=30)
                if msg["msg_type"] == "status" and not msg["parent_header"] and \
                        msg["content"]["execution_state"] == "idle":
                    break
            reply, msgs = execute(kc, "1 + 1", timeout=30)
            assert reply["content"]["status"] == "ok"
            kernel.remember_children()
        assert hb.missed == 0
        assert kernel.proc.poll() is None
        log = kernel.stderr()
        assert '"event": "service_dead"' in log and '"event": "service_recovered"' in log
        kc.stop_channels()
    finally:
        kernel.stop()
