"""`kernelsvc install`: a kernelspec, as `ipykernel install` writes one."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

from kernelsvc.supervisor.kernel_info import debugger_available
from kernelsvc.supervisor.limits import parse_size

DEFAULT_NAME = "kernelsvc"
DEFAULT_DISPLAY_NAME = "Python 3 (kernelsvc)"
# Per cell, the stream output a notebook is sent (characters): its head and its tail, with a
# line saying how much of the middle was left out. Under an unbounded `while True: print()`
# JupyterLab stops answering clicks for tens of seconds; when such a cell ends, the page
# freezes while it renders the tail: about 1 s with 1M, 1 to 2.5 s with 2M, 3 to 10 s with
# 4M (tests/e2e on two busy cores). No one reads more than 1M of a cell's output.
DEFAULT_MAX_OUTPUT_BYTES = "1M"


def kernelspec(display_name: str, env: dict[str, str],
               max_output_bytes: str | None = DEFAULT_MAX_OUTPUT_BYTES) -> dict:
    """Absolute interpreter path, {connection_file}, signal-mode interrupts (the supervisor
    turns SIGINT into an interrupt of the worker), the in-place restart provisioner, and a
    per-cell output budget (``max_output_bytes``: a size such as 1M; None or 0 for none).
    Raises ValueError for a size `kernelsvc start` would refuse."""
    argv = [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f", "{connection_file}"]
    if max_output_bytes is not None and parse_size(max_output_bytes) > 0:
        argv += ["--max-output-bytes", max_output_bytes]
    spec = {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {
            "debugger": debugger_available(),
            "kernel_provisioner": {"provisioner_name": "kernelsvc"},
        },
    }
    if env:
        spec["env"] = env
    return spec


def install(name: str, display_name: str, user: bool, prefix: str | None,
            env: dict[str, str],
            max_output_bytes: str | None = DEFAULT_MAX_OUTPUT_BYTES) -> str:
    """Write the kernelspec where Jupyter looks; returns the directory it went to."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / name
        source.mkdir()
        spec = kernelspec(display_name, env, max_output_bytes)
        (source / "kernel.json").write_text(json.dumps(spec, indent=1))
        logo = Path(__file__).with_name("logo-64x64.png")
        if logo.exists():
            shutil.copy(logo, source / logo.name)
        return KernelSpecManager().install_kernel_spec(
            str(source), kernel_name=name, user=user, prefix=prefix
        )
