from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.helpers.kernel import RunningKernel, start_kernel
from tests.helpers.waiting import wait_until


@pytest.fixture(autouse=True, scope="session")
def isolated_dirs(tmp_path_factory):
    """Keep IPython history and Jupyter runtime files out of the user's home."""
    base = tmp_path_factory.mktemp("home")
    for var, sub in (("IPYTHONDIR", "ipython"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_CONFIG_DIR", "config")):
        os.environ[var] = str(base / sub)
    os.environ.pop("JPY_PARENT_PID", None)
    return base


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """A test that leaves a child process behind fails."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    def leaked():
        return [p for p in psutil.Process().children(recursive=True)
                if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    try:
        wait_until(lambda: not leaked(), 5, "child processes to exit")
    except TimeoutError:
        stray = leaked()
        for proc in stray:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"test leaked processes: {[(p.pid, p.name()) for p in stray]}")


@pytest.fixture
def kernel(tmp_path: Path):
    """A running `kernelsvc start`, killed by pid afterwards."""
    running: RunningKernel = start_kernel(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def kc(kernel: RunningKernel):
    client = kernel.client()
    yield client
    client.stop_channels()
