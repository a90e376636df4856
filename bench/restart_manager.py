"""jupyter_client's AsyncKernelManager.restart_kernel() -> completed `1+1`, through the
kernelsvc provisioner (what Jupyter Server does for JupyterLab's restart button).

    python bench/restart_manager.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager


async def run_cell(kc, code: str) -> dict:
    msg_id = kc.execute(code)
    while True:
        msg = await kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" \
                and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = await kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


async def main(n: int) -> None:
    prefix = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "kernelsvc.supervisor", "install", "--prefix",
                    str(prefix)], check=True, capture_output=True, timeout=60)
    kernels = prefix / "share" / "jupyter" / "kernels"
    km = AsyncKernelManager(kernel_name="kernelsvc",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    await km.start_kernel(stderr=subprocess.DEVNULL)  # its JSON logs are not the figure
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=30)
        pid = km.provisioner.process.pid
        times = []
        for _ in range(n):
            await run_cell(kc, "x = 1")
            started = time.perf_counter()
            await km.restart_kernel()
            reply = await run_cell(kc, "1+1")
            times.append((time.perf_counter() - started) * 1000)
            assert reply["content"]["execution_count"] == 1
        assert km.provisioner.process.pid == pid, "the process was relaunched"
        print(f"restart_kernel() -> 1+1 done, in place: median {statistics.median(times):.1f} ms,"
              f" min {min(times):.1f}, max {max(times):.1f} (n={n}, same pid {pid})")
    finally:
        kc.stop_channels()
        await km.shutdown_kernel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
