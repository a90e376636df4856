"""`kernelsvc install`: a kernelspec, as `ipykernel install` writes one."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

DEFAULT_NAME = "kernelsvc"
DEFAULT_DISPLAY_NAME = "Python 3 (kernelsvc)"


def kernelspec(display_name: str, env: dict[str, str]) -> dict:
    """Absolute interpreter path, {connection_file}, signal-mode interrupts (the supervisor
    turns SIGINT into an interrupt of the worker), and the in-place restart provisioner."""
    spec = {
        "argv": [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f",
                 "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {
            "debugger": False,
            "kernel_provisioner": {"provisioner_name": "kernelsvc"},
        },
    }
    if env:
        spec["env"] = env
    return spec


def install(name: str, display_name: str, user: bool, prefix: str | None,
            env: dict[str, str]) -> str:
    """Write the kernelspec where Jupyter looks; returns the directory it went to."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / name
        source.mkdir()
        (source / "kernel.json").write_text(json.dumps(kernelspec(display_name, env), indent=1))
        logo = Path(__file__).with_name("logo-64x64.png")
        if logo.exists():
            shutil.copy(logo, source / logo.name)
        return KernelSpecManager().install_kernel_spec(
            str(source), kernel_name=name, user=user, prefix=prefix
        )
