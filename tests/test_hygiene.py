"""Tests wait on events, never on time.sleep (except inside the one bounded poll helper)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SLEEP = re.compile(r"^(?!\s*#).*\btime\.sleep\(|^\s*from time import .*\bsleep\b", re.M)


def test_no_sleeps_in_tests():
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.name != "waiting.py" and path != Path(__file__).resolve()
        and SLEEP.search(path.read_text())
    ]
    assert offenders == []
