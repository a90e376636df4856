"""Errors look as IPython formats them, though the worker formats them faster."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.kernel import execute

# Formats the errors of a few cells with a plain InteractiveShell, with or without the fork
# server's memoized formatting: a cell's own frames, a module's (json's), an interrupt.
FORMAT = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
if sys.argv[1] == "memoized":
    from kernelsvc.worker.forkserver import faster_tracebacks, memo_executing_node_style
    faster_tracebacks()
    memo_executing_node_style()
shell = InteractiveShell.instance()
shown = []
shell._showtraceback = lambda etype, evalue, stb: shown.append(stb)
cells = ["def inner():\n    raise KeyboardInterrupt\ninner()",
         "import json\njson.loads('{')",
         "x = 1\n1 / 0"]
for cell in cells * 2:  # the second time from what the first one memoized
    shell.run_cell(cell)
print("\n" + json.dumps(shown))
"""


def format_errors(mode: str) -> list[list[str]]:
    result = subprocess.run([sys.executable, "-c", FORMAT, mode], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_memoized_formatting_gives_the_same_tracebacks():
    plain = format_errors("plain")
    assert len(plain) == 6 and all(plain)
    assert format_errors("memoized") == plain


def test_history_keeps_the_error_that_was_shown(kc):
    """IPython stores each cell's error for %notebook: the traceback shown, not formatted
    twice."""
    reply, _ = execute(kc, "def f():\n    return 1 / 0\nf()")
    content = reply["content"]
    _, msgs = execute(kc, "import json\nprint(json.dumps(get_ipython().history_manager"
                          f".exceptions[{content['execution_count']}]))")
    stored = json.loads("".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream"))
    assert stored == {"ename": "ZeroDivisionError", "evalue": "division by zero",
                      "traceback": content["traceback"]}
    assert len(content["traceback"]) > 2  # the cell's frames, not just the error line
