"""Tests wait on events, never on sleeps (except inside the one bounded poll helper).

Code sent to the kernel as a string may sleep: that is the user's code under test.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ALLOWED = {TESTS / "helpers" / "waiting.py"}


def sleeps_in(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    imported_sleep = {
        alias.asname or alias.name
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        and node.module in ("time", "asyncio")
        for alias in node.names if alias.name == "sleep"
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "sleep" and \
                isinstance(func.value, ast.Name) and func.value.id in ("time", "asyncio"):
            lines.append(node.lineno)
        elif isinstance(func, ast.Name) and func.id in imported_sleep:
            lines.append(node.lineno)
    return lines


def test_no_sleeps_in_tests():
    offenders = {
        str(path.relative_to(TESTS)): sleeps_in(path)
        for path in TESTS.rglob("*.py") if path not in ALLOWED
    }
    assert {name: lines for name, lines in offenders.items() if lines} == {}


def test_the_check_finds_sleeps(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom asyncio import sleep as nap\n"
                      "time.sleep(1)\nnap(2)\nx = 'time.sleep(3)'\n")
    assert sleeps_in(sample) == [3, 4]
