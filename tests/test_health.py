"""`kernelsvc health`: what container HEALTHCHECKs and Kubernetes probes run."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers.kernel import KERNELSVC, start_kernel

pytestmark = pytest.mark.timeout(90)


def health(conn, timeout="5"):
    return subprocess.run([*KERNELSVC, "health", "-f", str(conn), "--timeout", timeout],
                          capture_output=True, text=True, timeout=60)


def test_healthy_kernel_reports_its_state(kernel, kc):
    kernel.remember_children()
    result = health(kernel.connection_file)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] is True and report["state"] == "idle"
    assert report["supervisor_pid"] == kernel.pid
    assert report["worker_pid"] in kernel.known_pids
    assert report["restarts"] == 0 and report["uptime_s"] >= 0
    assert "memory_limit_bytes" in report["limits"]


def test_nothing_listening_is_unhealthy(tmp_path):
    from tests.helpers.kernel import write_conn

    result = health(write_conn(tmp_path / "conn.json"), timeout="0.5")
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"healthy": False, "reason": "heartbeat did not answer"}


def test_a_dead_kernel_is_unhealthy(tmp_path):
    ipythondir = tmp_path / "ipython"
    startup = ipythondir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-exit.py").write_text("import os\nos._exit(3)\n")
    env = {**os.environ, "IPYTHONDIR": str(ipythondir)}
    kernel = start_kernel(tmp_path, "--boot-retries", "1", "--max-backoff", "5", env=env)
    try:
        kc = kernel.client(wait_for_worker=False)  # answered without a worker
        while True:
            msg = kc.get_iopub_msg(timeout=30)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "dead":
                break
        result = health(kernel.connection_file)
        assert result.returncode == 1
        report = json.loads(result.stdout)
        assert report["state"] == "fatal" and "dead" in report["reason"]
        kc.stop_channels()
    finally:
        kernel.stop()


def test_a_broken_connection_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "conn.json"
    path.write_text("{oops")
    result = health(path)
    assert result.returncode == 2
    assert result.stderr.startswith("kernelsvc: error:") and "Traceback" not in result.stderr
