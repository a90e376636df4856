"""The wheel holds every module of both packages (subpackages must be listed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_wheel_contains_every_module(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path),
         str(ROOT)],
        capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("kernelsvc-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in (("supervisor", ROOT / "supervisor"), ("worker", ROOT / "worker")):
        for source in folder.rglob("*.py"):
            arcname = f"kernelsvc/{package}/{source.relative_to(folder).as_posix()}"
            assert arcname in names, f"{arcname} missing from the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "kernelsvc = kernelsvc.supervisor.__main__:run" in text
