"""jupyter_kernel_test's protocol conformance suite, run against a real `kernelsvc start`.

The kernel is launched from a throwaway kernelspec (argv only, never an installed spec),
through jupyter_client's KernelManager, exactly as a notebook server would launch it.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import jupyter_kernel_test as jkt
import psutil
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from tests.helpers.kernel import worker_ready
from tests.helpers.kernelspec import KERNEL_NAME, write_kernelspec
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(60)



def kernel_pids(km: KernelManager) -> set[int]:
    """The supervisor and every process under it (the worker, its children)."""
    provisioner = km.provisioner
    pid = getattr(provisioner, "pid", None) if provisioner is not None else None
    if pid is None:
        return set()
    try:
        root = psutil.Process(pid)
        return {pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class KernelsvcLauncher:
    """setUpClass/tearDownClass for jupyter_kernel_test classes, via a temporary spec."""

    km: KernelManager
    _tmp: tempfile.TemporaryDirectory
    _pids: set[int]
    start_channels = True

    @classmethod
    def setUpClass(cls) -> None:
        cls._tmp = tempfile.TemporaryDirectory(prefix="kernelsvc-spec-")
        kernels = write_kernelspec(Path(cls._tmp.name))
        ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
        assert KERNEL_NAME in ksm.find_kernel_specs()
        cls.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
        # Its own IPython dir: the history tests count search hits, so other tests' kernels
        # (which share the session's IPYTHONDIR) must not add to them.
        env = {**os.environ, "IPYTHONDIR": str(Path(cls._tmp.name) / "ipython")}
        cls.km.start_kernel(env=env)
        cls._pids = kernel_pids(cls.km)
        cls.kc = cls.km.client()
        try:
            if cls.start_channels:
                cls.kc.start_channels()
                cls.kc.wait_for_ready(timeout=30)
                # kernel_info is the supervisor's; the worker's start-up statuses must be
                # over before the tests count IOPub messages.
                wait_until(lambda: worker_ready(cls.kc), 30, "the first worker")
            else:
                # Wait for the worker with a throwaway client, so the test's own client makes
                # the first subscription of its own, and the worker exists before the
                # per-test leak check takes its snapshot.
                probe = cls.km.client()
                probe.start_channels()
                try:
                    probe.wait_for_ready(timeout=30)
                    wait_until(lambda: worker_ready(probe), 30, "the first worker")
                finally:
                    probe.stop_channels()
        except BaseException:
            cls.tearDownClass()  # unittest skips tearDownClass when setUpClass fails
            raise
        cls._pids |= kernel_pids(cls.km)

    @classmethod
    def tearDownClass(cls) -> None:
        cls._pids |= kernel_pids(cls.km)
        try:
            cls.kc.stop_channels()
            cls.km.shutdown_kernel(now=False)
        finally:
            leftover = cls._reap()
            cls._tmp.cleanup()
        assert not leftover, f"kernel processes survived shutdown_request: {leftover}"

    @classmethod
    def _reap(cls) -> list[int]:
        """Wait for the kernel's processes to go; SIGKILL by pid whatever did not."""
        try:
            wait_until(lambda: not any(alive(p) for p in cls._pids), 10, "kernel exit")
            return []
        except TimeoutError:
            leftover = [p for p in cls._pids if alive(p)]
            for pid in leftover:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_until(lambda: not any(alive(p) for p in leftover), 10, "killed processes")
            return leftover


class KernelsvcConformanceTests(KernelsvcLauncher, jkt.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('oops', file=sys.stderr)"

    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import collections; collections.Ord", "matches": {"OrderedDict"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2", "for i in range(3):"]
    invalid_code_samples = ["import = 7q", "1 +* 2"]

    code_page_something = "zip?"
    code_generate_error = "raise ValueError('conformance boom')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
        {"code": "{'a': 1}", "result": "{'a': 1}"},
    ]
    code_display_data = [
        {
            "code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from IPython.display import Math, display; display(Math('\\frac{1}{2}'))",
            "mime": "text/latex",
        },
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"


class KernelsvcIopubWelcomeTests(KernelsvcLauncher, jkt.IopubWelcomeTests):
    """JEP 65: a new IOPub subscriber is greeted with iopub_welcome."""

    kernel_name = KERNEL_NAME
    support_iopub_welcome = True
    start_channels = False  # the test subscribes itself and expects the welcome first
