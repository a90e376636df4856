"""A throwaway kernelspec that launches kernelsvc from this interpreter's argv."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "kernelsvc-test"  # never "python"/"python3": jupyter_client remaps those


def write_kernelspec(root: Path) -> Path:
    """A kernelspec directory for kernelsvc under ``root``; returns its ``kernels`` dir."""
    kernels = root / "kernels"
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f",
                 "{connection_file}"],
        "display_name": "kernelsvc (test)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return kernels
