"""shutdown_request(restart=True): in place behind the same sockets, or a prompt exit."""

from __future__ import annotations

import json
import os
import time

import pytest
from jupyter_client import KernelManager

from tests.helpers.heartbeat import HeartbeatMonitor
from tests.helpers.kernel import (
    collect_iopub,
    execute,
    get_reply,
    kernel_statuses_until_idle,
    start_kernel,
)
from tests.helpers.kernelspec import KERNEL_NAME, write_kernelspec

pytestmark = pytest.mark.timeout(90)


def restart(kc) -> dict:
    request = kc.session.msg("shutdown_request", {"restart": True})
    kc.control_channel.send(request)
    return get_reply(kc, request["header"]["msg_id"], 10, "control")


def info(kc) -> dict:
    return kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]



def test_in_place_restart_keeps_the_connection_and_clears_the_namespace(kernel, kc):
    execute(kc, "old = 1")
    execute(kc, "old += 1")
    before = info(kc)
    ports = json.loads(kernel.connection_file.read_text())
    kernel.remember_children()
    with HeartbeatMonitor(kernel.connection_file) as hb:
        reply = restart(kc)
        assert reply["content"] == {"status": "ok", "restart": True}
        kernel_statuses_until_idle(kc)
        reply, msgs = execute(kc, "'old' in dir(), 1 + 1", timeout=30)
    assert hb.missed == 0
    assert reply["content"]["execution_count"] == 1
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert results == ["(False, 2)"]
    after = info(kc)
    kernel.remember_children()
    assert after["supervisor_pid"] == before["supervisor_pid"] == kernel.pid
    assert after["worker_pid"] != before["worker_pid"]
    assert after["generation"] == before["generation"] + 1
    assert json.loads(kernel.connection_file.read_text()) == ports


def test_restart_saves_the_history_and_runs_the_namespace_finalizers(kernel, kc, tmp_path):
    marker = tmp_path / "finalized"
    finalizer = f"open({str(marker)!r}, 'w').write('x')"
    execute(kc, f"class Tidy:\n    def __del__(self):\n        {finalizer}\ntidy = Tidy()")
    execute(kc, "before_restart = 41")
    assert restart(kc)["content"]["status"] == "ok"
    kernel_statuses_until_idle(kc)
    assert marker.read_text() == "x"  # the old worker emptied its namespace before leaving
    msg_id = kc.history(hist_access_type="range", session=-1, start=1, stop=None,
                        output=False, raw=True)
    previous = get_reply(kc, msg_id)["content"]["history"]
    assert [cell for _, _, cell in previous][-1] == "before_restart = 41"


def test_restart_while_busy_answers_the_running_cell(kernel, kc):
    kernel.remember_children()
    running = kc.execute("while True:\n    pass")
    queued = kc.execute("1 + 1")
    while True:  # the loop has started
        msg = kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") == running and msg["msg_type"] == "execute_input":
            break
    restart(kc)
    replies = [kc.get_shell_msg(timeout=10) for _ in range(2)]
    assert [r["parent_header"]["msg_id"] for r in replies] == [running, queued]
    assert replies[0]["content"]["ename"] == "KernelRestarted"
    assert replies[1]["content"]["status"] == "aborted"
    statuses = [m["content"]["execution_state"] for m in collect_iopub(kc, running)
                if m["msg_type"] == "status"]
    assert statuses[-1] == "idle"
    reply, _ = execute(kc, "1 + 1", timeout=30)
    assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 1
    kernel.remember_children()


@pytest.mark.parametrize("how", ["env", "flag"])
def test_exit_mode_ends_the_process_promptly(tmp_path, how):
    env = {**os.environ}
    extra = []
    if how == "env":
        env["JPY_PARENT_PID"] = str(os.getpid())  # what jupyter_client's manager sets
    else:
        extra = ["--restart-mode", "exit"]
    kernel = start_kernel(tmp_path, *extra, env=env)
    try:
        kc = kernel.client()
        started = time.monotonic()
        assert restart(kc)["content"]["restart"] is True
        assert kernel.proc.wait(timeout=5) == 0
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"{elapsed:.2f}s: a KernelManager would have to kill us"
        kc.stop_channels()
    finally:
        kernel.stop()


def test_explicit_in_place_beats_the_manager_default(tmp_path):
    env = {**os.environ, "JPY_PARENT_PID": str(os.getpid())}
    kernel = start_kernel(tmp_path, "--restart-mode", "in-place", env=env)
    try:
        kc = kernel.client()
        restart(kc)
        kernel_statuses_until_idle(kc)
        assert kernel.proc.poll() is None
        kernel.remember_children()
        kc.stop_channels()
    finally:
        kernel.stop()


def test_kernel_manager_restart_relaunches_quickly(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = write_kernelspec(tmp_path)
    km = KernelManager(kernel_name=KERNEL_NAME,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        first = km.provisioner.process.pid
        execute(kc, "x = 1")
        started = time.monotonic()
        km.restart_kernel(now=False)  # asks the kernel, waits for it to exit, relaunches
        elapsed = time.monotonic() - started
        assert km.provisioner.process.pid != first
        assert elapsed < 2.5, f"{elapsed:.2f}s: the manager had to kill the kernel"
        kc.wait_for_ready(timeout=30)
        reply, _ = execute(kc, "'x' in dir()", timeout=30)
        assert reply["content"]["status"] == "ok"
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=False)


def test_a_cell_sent_after_the_restart_runs_on_the_new_worker(kernel, kc):
    kernel.remember_children()
    execute(kc, "x = 1")
    restart(kc)  # answered at once; the new worker is still starting
    reply, msgs = execute(kc, "'x' in dir()", timeout=30)
    assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 1
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert results == ["False"]
    kernel.remember_children()


def test_preloaded_modules_are_already_imported_in_a_new_worker(tmp_path):
    kernel = start_kernel(tmp_path, "--preload", "tabnanny,wave")
    try:
        kc = kernel.client()
        restart(kc)
        kernel_statuses_until_idle(kc)
        reply, msgs = execute(kc, "import sys; 'tabnanny' in sys.modules, 'sndhdr' in sys.modules",
                              timeout=30)
        results = [m["content"]["data"]["text/plain"] for m in msgs
                   if m["msg_type"] == "execute_result"]
        assert results == ["(True, False)"]  # preloaded; never asked for
        kernel.remember_children()
        kc.stop_channels()
    finally:
        kernel.stop()
