"""`kernelsvc start` options and its one-line errors (real processes, exit status 2)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from tests.helpers.kernel import KERNELSVC, start_kernel, write_conn
from tests.helpers.waiting import wait_until


def run_start(path, timeout=20):
    return subprocess.run(
        [*KERNELSVC, "start", "-f", str(path)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("kernelsvc: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_unreadable_file(tmp_path):
    path = tmp_path / "conn.json"
    path.mkdir()  # exists, but cannot be read as a file
    assert_one_line_error(run_start(path), "cannot read connection file")


def test_invalid_json(tmp_path):
    path = tmp_path / "conn.json"
    path.write_text("{not json")
    assert_one_line_error(run_start(path), "not valid JSON")


def test_missing_field(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    del data["shell_port"]
    path.write_text(json.dumps(data))
    assert_one_line_error(run_start(path), "missing field 'shell_port'")


def test_wrongly_typed_field(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    data["hb_port"] = "9000"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_start(path), "'hb_port' must be an integer")


def test_unsupported_transport(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    data["transport"] = "udp"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_start(path), "unsupported transport 'udp'")


def test_unsupported_signature_scheme(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    data["signature_scheme"] = "rsa-sha256"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_start(path), "unsupported signature_scheme")


def test_port_in_use(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        path = write_conn(tmp_path / "conn.json", shell_port=holder.getsockname()[1])
        assert_one_line_error(run_start(path), "address already in use")
    finally:
        holder.close()


@pytest.mark.timeout(60)
def test_missing_file_is_created_0600_and_removed_on_exit(tmp_path):
    path = tmp_path / "new.json"
    kernel = start_kernel(tmp_path, conn=path)
    try:
        wait_until(path.exists, 20, "connection file")
        info = wait_until(lambda: _load(path), 5, "complete connection file")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert info["ip"] == "127.0.0.1" and info["transport"] == "tcp"
        assert len(info["key"]) >= 32
        ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port",
                                   "hb_port")]
        assert len(set(ports)) == 5 and all(p > 0 for p in ports)
        kc = kernel.client()
        reply = kc.kernel_info(reply=True, timeout=10)
        assert reply["content"]["implementation"] == "kernelsvc"
        kc.stop_channels()
        kernel.proc.terminate()
        assert kernel.proc.wait(timeout=5) == 0
        assert not path.exists()
    finally:
        kernel.stop()


@pytest.mark.timeout(60)
def test_existing_file_used_exactly_and_kept(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    before = path.read_text()
    kernel = start_kernel(tmp_path, conn=path)
    try:
        kc = kernel.client()  # connects with exactly the ports and key in the file
        assert kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"
        kc.stop_channels()
        kernel.proc.terminate()
        assert kernel.proc.wait(timeout=5) == 0
        assert path.read_text() == before
    finally:
        kernel.stop()


@pytest.mark.timeout(60)
def test_ipc_transport(tmp_path):
    path = tmp_path / "ipc.json"
    ipc_base = tmp_path / "kipc"
    write_conn(path, transport="ipc")
    data = json.loads(path.read_text())
    data["ip"] = str(ipc_base)
    path.write_text(json.dumps(data))
    kernel = start_kernel(tmp_path, conn=path)
    try:
        kc = kernel.client()
        assert kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"
        assert (tmp_path / f"kipc-{data['shell_port']}").exists()
        kc.stop_channels()
    finally:
        kernel.stop()


def test_dash_f_and_long_option_are_the_same():
    result = subprocess.run([*KERNELSVC, "start", "--help"], capture_output=True, text=True,
                            timeout=20)
    assert "-f, --connection-file" in result.stdout


def test_version():
    result = subprocess.run([sys.executable, "-m", "kernelsvc.supervisor", "--version"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and "kernelsvc" in result.stdout


def _load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def test_port_zero_in_an_existing_file_is_refused(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    data["iopub_port"] = 0  # we would bind a port no client could learn
    path.write_text(json.dumps(data))
    assert_one_line_error(run_start(path), "iopub_port 0 is out of range")


def test_bad_memory_limit_is_a_one_line_error(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    result = subprocess.run([*KERNELSVC, "start", "-f", str(path), "--memory-limit", "lots"],
                            capture_output=True, text=True, timeout=20)
    assert_one_line_error(result, "size option", "not a size")


@pytest.mark.timeout(60)
def test_every_log_line_is_json_including_library_warnings(tmp_path):
    path = write_conn(tmp_path / "conn.json")
    data = json.loads(path.read_text())
    data["key"] = ""  # jupyter_client warns through stdlib logging; we warn too
    path.write_text(json.dumps(data))
    kernel = start_kernel(tmp_path, conn=path)
    try:
        kc = kernel.client()
        kc.stop_channels()
        kernel.proc.terminate()
        assert kernel.proc.wait(timeout=10) == 0
        lines = [line for line in kernel.stderr().splitlines() if line.strip()]
        events = [json.loads(line) for line in lines]  # every line parses
        names = {event["event"] for event in events}
        assert {"kernel_listening", "worker_started", "signing_disabled"} <= names
        assert any("signing is disabled" in event["event"] and event.get("logger")
                   for event in events)
        assert all(event.get("timestamp") and event.get("level") for event in events)
    finally:
        kernel.stop()
