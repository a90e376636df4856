"""Restart → completed `1+1` (reply and idle), in place, kernelsvc alone (median of N).

    python bench/restart.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file


def wait_idle_without_parent(kc, timeout=30):
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["msg_type"] == "status" and not msg["parent_header"] and \
                msg["content"]["execution_state"] == "idle":
            return


def run_and_wait(kc, code, timeout=30):
    msg_id = kc.execute(code)
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def main(n: int = 20) -> None:
    tmp = Path(tempfile.mkdtemp())
    conn = tmp / "conn.json"
    write_connection_file(str(conn), key=os.urandom(16).hex().encode())
    proc = subprocess.Popen([sys.executable, "-m", "kernelsvc.supervisor", "start", "-f",
                             str(conn), "--restart-mode", "in-place", "--log-level", "warning"],
                            start_new_session=True)
    try:
        kc = BlockingKernelClient()
        kc.load_connection_file(str(conn))
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        times = []
        for _ in range(n):
            run_and_wait(kc, "x = 1")
            started = time.perf_counter()
            request = kc.session.msg("shutdown_request", {"restart": True})
            kc.control_channel.send(request)
            while kc.get_control_msg(timeout=30)["parent_header"].get("msg_id") != \
                    request["header"]["msg_id"]:
                pass
            reply = run_and_wait(kc, "1+1")  # queued until the new worker is ready
            assert reply["content"]["execution_count"] == 1, "ran on the old worker"
            times.append((time.perf_counter() - started) * 1000)
        print(f"restart -> 1+1 done: median {statistics.median(times):.1f} ms, "
              f"min {min(times):.1f}, max {max(times):.1f} (n={n})")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
