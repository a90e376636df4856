"""`kernelsvc install` and the provisioner: Jupyter's restart becomes the in-place restart."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import psutil
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

from tests.helpers.kernel import KERNELSVC, alive
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def install(tmp_path, *args):
    result = subprocess.run([*KERNELSVC, "install", "--prefix", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return tmp_path / "share" / "jupyter" / "kernels"


def test_install_writes_a_kernelspec_jupyter_lists(tmp_path):
    kernels = install(tmp_path, "--name", "ksvc", "--display-name", "KS", "--env", "A", "1")
    spec = json.loads((kernels / "ksvc" / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f",
                            "{connection_file}", "--max-output-bytes", "1M"]
    assert spec["display_name"] == "KS" and spec["language"] == "python"
    assert spec["interrupt_mode"] == "signal" and spec["env"] == {"A": "1"}
    assert spec["metadata"]["kernel_provisioner"] == {"provisioner_name": "kernelsvc"}
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    listed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "jupyter"),
                             "kernelspec", "list", "--json"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert "ksvc" in json.loads(listed.stdout)["kernelspecs"]


def test_install_refuses_two_destinations(tmp_path):
    result = subprocess.run([*KERNELSVC, "install", "--user", "--prefix", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "choose one of" in result.stderr


async def run_cell(kc, code: str) -> tuple[dict, list]:
    msg_id = kc.execute(code)
    outputs = []
    while True:
        msg = await kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        outputs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = await kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply, outputs


def test_restart_kernel_is_in_place_under_async_kernel_manager(tmp_path):
    kernels = install(tmp_path)
    pids: set[int] = set()

    async def scenario():
        km = AsyncKernelManager(kernel_name="kernelsvc",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=30)
            supervisor = km.provisioner.process.pid
            pids.update({supervisor, *(p.pid for p in
                                       psutil.Process(supervisor).children(recursive=True))})
            ports = json.loads(open(km.connection_file).read())
            await run_cell(kc, "x = 1")
            started = time.monotonic()
            await km.restart_kernel()
            reply, outputs = await run_cell(kc, "'x' in dir(), 1 + 1")
            elapsed_ms = (time.monotonic() - started) * 1000
            print(f"restart_kernel -> 1+1 done: {elapsed_ms:.0f} ms")  # a figure, not a check
            assert km.provisioner.process.pid == supervisor  # the same process
            assert json.loads(open(km.connection_file).read()) == ports
            assert reply["content"]["execution_count"] == 1
            results = [m["content"]["data"]["text/plain"] for m in outputs
                       if m["msg_type"] == "execute_result"]
            assert results == ["(False, 2)"]
            pids.update(p.pid for p in psutil.Process(supervisor).children(recursive=True))
        finally:
            kc.stop_channels()
            await km.shutdown_kernel()
        assert not km.has_kernel

    asyncio.run(scenario())
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "every kernel process")

