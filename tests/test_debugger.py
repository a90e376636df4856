"""The debugger protocol (debug_request on control, debug_event on IOPub), driven as
JupyterLab's debugger panel drives it, against a real `kernelsvc start`."""

from __future__ import annotations

import os
import re
import shutil
import sys

import pytest

import kernelsvc.worker
from kernelsvc.worker.murmur import murmur2
from tests.helpers.debug import JUPYTERLAB_INITIALIZE, DebugClient
from tests.helpers.kernel import execute, get_reply, start_kernel

pytest.importorskip("debugpy")
pytestmark = pytest.mark.timeout(120)

WORKER_DIR = os.path.dirname(os.path.abspath(kernelsvc.worker.__file__))
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A leading blank line, as cells often have: JupyterLab counts it, so line 7 is `b = ...`.
CELL = """
def double(x):
    doubled = x * 2
    return doubled

a = 20
b = double(a)
c = b + 2
"""
BREAK_LINE = 7


@pytest.fixture
def debug(kc):
    """A debug client; the cell files its kernel wrote are removed afterwards."""
    client = DebugClient(kc)
    prefix = client.ok("debugInfo")["tmpFilePrefix"]
    yield client
    shutil.rmtree(prefix, ignore_errors=True)


def cell_path(info: dict, code: str) -> str:
    """The path JupyterLab computes for a cell from debugInfo."""
    assert info["hashMethod"] == "Murmur2"
    return f"{info['tmpFilePrefix']}{murmur2(code, info['hashSeed'])}{info['tmpFileSuffix']}"


def set_breakpoint(debug: DebugClient, code: str, line: int) -> str:
    """What JupyterLab does when a breakpoint is toggled in a cell."""
    path = debug.ok("dumpCell", code=code)["sourcePath"]
    body = debug.ok("setBreakpoints", source={"path": path}, breakpoints=[{"line": line}],
                    sourceModified=False)
    assert [(bp["verified"], bp["line"]) for bp in body["breakpoints"]] == [(True, line)]
    return path


def names(variables: list[dict]) -> dict[str, str]:
    return {v["name"]: v["value"] for v in variables}


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize(("text", "seed", "expected"), [
    ("", 0, 0),
    ("a", 0, 2456313694),
    ("abcd", 0x4B535643, 3255818231),
    ("x = 1\n", 0xC70F6907, 1602534638),
    ('print("héllo 😀")\n', 0x4B535643, 1151947380),  # hashed as UTF-8, like JupyterLab
    ("def f(x):\n    return x * 2\n", 0x4B535643, 1714661943),
])
def test_murmur2_matches_jupyterlab(text, seed, expected):
    assert murmur2(text, seed) == expected


# ---------------------------------------------------------------- a real kernel


def test_kernel_info_announces_the_debugger(kc):
    content = kc.kernel_info(reply=True, timeout=10)["content"]
    assert content["debugger"] is True
    assert "debugger" in content["supported_features"]


def test_without_debugpy_there_is_no_debugger_and_requests_get_an_error(tmp_path):
    """kernelsvc[debug] not installed: kernel_info says so, and a frontend that asks
    anyway gets an error reply, not silence."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['debugpy'] = None\n")
    path = os.pathsep.join(filter(None, [str(hide), os.environ.get("PYTHONPATH")]))
    kernel = start_kernel(tmp_path, env={**os.environ, "PYTHONPATH": path})
    try:
        kc = kernel.client()
        content = kc.kernel_info(reply=True, timeout=10)["content"]
        assert content["debugger"] is False
        assert "debugger" not in content["supported_features"]
        response = DebugClient(kc).request("initialize", **JUPYTERLAB_INITIALIZE)
        assert response["success"] is False and "debugpy" in response["message"]
        kc.stop_channels()
    finally:
        kernel.stop()


def test_cells_are_compiled_under_the_debuggers_file_names(kc, debug):
    info = debug.ok("debugInfo")
    assert info["isStarted"] is False
    code = "import inspect\n\ndef where():\n    return inspect.currentframe().f_code.co_filename\n"
    execute(kc, code)
    reply, msgs = execute(kc, "where()")
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert results == [repr(cell_path(info, code))]
    # Tracebacks still name the cell as IPython does, with the cell's own line numbers.
    reply, _ = execute(kc, "\n\n1 / 0")
    assert "In[3], line 3" in ANSI.sub("", "".join(reply["content"]["traceback"]))


def test_a_scripted_debug_session(kc, debug):
    """Breakpoint in a cell, hit it, inspect, step in and over, evaluate, continue."""
    info = debug.ok("debugInfo")
    assert info["isStarted"] is False and info["breakpoints"] == []
    capabilities = debug.start()
    assert capabilities["supportsConfigurationDoneRequest"] is True
    path = set_breakpoint(debug, CELL, BREAK_LINE)
    assert path == cell_path(info, CELL)
    assert open(path, encoding="utf-8").read() == CELL
    debug.ok("configurationDone")
    info = debug.ok("debugInfo")
    assert info["isStarted"] is True
    assert info["breakpoints"] == [{"source": path, "breakpoints": [{"line": BREAK_LINE}]}]

    msg_id = kc.execute(CELL)
    stopped = debug.wait_event("stopped")
    assert stopped["body"]["reason"] == "breakpoint"
    thread = stopped["body"]["threadId"]
    # The main thread is held; control still answers.
    assert debug.ok("debugInfo")["stoppedThreads"] == [thread]

    frames = debug.ok("stackTrace", threadId=thread)["stackFrames"]
    assert (frames[0]["source"]["path"], frames[0]["line"]) == (path, BREAK_LINE)
    assert not [f for f in frames if f.get("source", {}).get("path", "").startswith(WORKER_DIR)]
    scopes = debug.ok("scopes", frameId=frames[0]["id"])["scopes"]
    variables = names(debug.ok("variables",
                               variablesReference=scopes[0]["variablesReference"])["variables"])
    assert variables["a"] == "20"
    assert "In" not in variables and "_ih" not in variables  # IPython's own names
    rich = debug.ok("richInspectVariables", variableName="a", frameId=frames[0]["id"])
    assert rich["data"]["text/plain"] == "20"

    debug.ok("stepIn", threadId=thread)
    top = debug.stop_at(debug.wait_event("stopped"))
    assert (top["name"], top["line"]) == ("double", 3)
    debug.ok("next", threadId=thread)
    top = debug.stop_at(debug.wait_event("stopped"))
    assert top["line"] == 4
    evaluated = debug.ok("evaluate", expression="doubled", frameId=top["id"], context="repl")
    assert evaluated["result"] == "40"
    debug.ok("copyToGlobals", srcVariableName="doubled", dstVariableName="copied",
             srcFrameId=top["id"])

    debug.ok("continue", threadId=thread)
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"
    assert debug.ok("debugInfo")["stoppedThreads"] == []
    globals_ = names(debug.ok("inspectVariables")["variables"])
    assert {k: globals_.get(k) for k in ("a", "b", "c", "copied")} == \
        {"a": "20", "b": "40", "c": "42", "copied": "40"}
    assert debug.ok("source", source={"path": path})["content"] == CELL

    debug.ok("disconnect", restart=False, terminateDebuggee=False)
    info = debug.ok("debugInfo")
    assert (info["isStarted"], info["breakpoints"]) == (False, [])
    reply, msgs = execute(kc, CELL, timeout=30)  # no breakpoint any more
    assert reply["content"]["status"] == "ok"
    assert not [m for m in msgs if m["msg_type"] == "debug_event"
                and m["content"]["event"] == "stopped"]


def test_a_second_session_on_the_same_worker(kc, debug):
    """JupyterLab's debugger toggled off and on again: disconnect, then a new session."""
    debug.start()
    set_breakpoint(debug, CELL, BREAK_LINE)
    debug.ok("disconnect", restart=False, terminateDebuggee=False)
    debug.start()
    assert debug.ok("debugInfo")["breakpoints"] == []
    set_breakpoint(debug, CELL, BREAK_LINE + 1)
    msg_id = kc.execute(CELL)
    top = debug.stop_at(debug.wait_event("stopped"))
    assert top["line"] == BREAK_LINE + 1
    debug.ok("continue", threadId=debug.ok("debugInfo")["stoppedThreads"][0])
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"
    debug.ok("disconnect", restart=False, terminateDebuggee=False)


def test_variables_between_cells(kc, debug):
    """The variables panel while no thread is stopped: the namespace, expandable."""
    debug.start()
    execute(kc, "data = {'xs': [1, 2, 3]}\n_private = 1")
    variables = {v["name"]: v for v in debug.ok("inspectVariables")["variables"]}
    assert "_private" not in variables and "In" not in variables
    data = variables["data"]
    assert data["type"] == "dict" and data["variablesReference"] > 0
    children = debug.ok("variables", variablesReference=data["variablesReference"])
    xs = {v["name"]: v for v in children["variables"]}["'xs'"]
    assert (xs["value"], xs["evaluateName"]) == ("[1, 2, 3]", "data['xs']")
    rich = debug.ok("richInspectVariables", variableName="data")
    assert rich["data"]["text/plain"] == "{'xs': [1, 2, 3]}"
    debug.ok("disconnect", restart=False, terminateDebuggee=False)


def test_a_step_off_the_end_of_a_cell_does_not_stop_the_next_cell(kc, debug):
    debug.start()
    code = "first = 1\nsecond = 2\n"
    set_breakpoint(debug, code, 2)
    msg_id = kc.execute(code)
    thread = debug.wait_event("stopped")["body"]["threadId"]
    debug.ok("next", threadId=thread)
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"
    reply, msgs = execute(kc, "third = 3\nfourth = 4\n", timeout=30)
    assert reply["content"]["status"] == "ok"
    assert debug.ok("debugInfo")["stoppedThreads"] == []
    debug.ok("disconnect", restart=False, terminateDebuggee=False)


def test_an_interrupt_at_a_breakpoint_ends_the_cell_and_debugging_goes_on(kc, debug):
    """Python 3.11 (pydevd traces with settrace): the cell ends with KeyboardInterrupt
    and the same worker debugs on. Python 3.12+ (sys.monitoring): pydevd's compiled
    callbacks swallow the KeyboardInterrupt and the thread stays stopped, so the
    interrupt escalation restarts the worker, which ends its debug session."""
    debug.start()
    code = "first = 1\nsecond = 2\n"
    set_breakpoint(debug, code, 2)
    msg_id = kc.execute(code)
    debug.wait_event("stopped")
    request = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 20, "control")["content"]["action"] \
        == "interrupted"
    reply = get_reply(kc, msg_id, 30)["content"]
    if sys.version_info < (3, 12):
        assert reply["ename"] == "KeyboardInterrupt"
        assert debug.ok("debugInfo")["stoppedThreads"] == []
    else:
        assert reply["ename"] == "WorkerRestarted"
        debug.wait_event("terminated")
        wait_for_new_worker(kc)
        debug.start()
        set_breakpoint(debug, code, 2)
    msg_id = kc.execute(code)
    top = debug.stop_at(debug.wait_event("stopped"))
    assert top["line"] == 2
    debug.ok("continue", threadId=debug.ok("debugInfo")["stoppedThreads"][0])
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"


def test_a_forked_child_runs_through_breakpoints(kc, debug):
    """multiprocessing's children have no debugger to stop for: they must not hang."""
    debug.start()
    code = "import os\n\ndef work(x):\n    y = x + 1\n    return y\n"
    set_breakpoint(debug, code, 4)
    execute(kc, code)
    reply, _ = execute(kc, "pid = os.fork()\nif pid == 0:\n    work(1)\n    os._exit(7)\n"
                           "os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])", timeout=30)
    assert reply["content"]["status"] == "ok"
    msg_id = kc.execute("work(2)")  # the parent still stops
    top = debug.stop_at(debug.wait_event("stopped"))
    assert (top["name"], top["line"]) == ("work", 4)
    debug.ok("continue", threadId=debug.ok("debugInfo")["stoppedThreads"][0])
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"


def restart_while_stopped(kc, debug: DebugClient) -> None:
    msg_id = kc.execute(CELL)
    debug.wait_event("stopped")
    request = kc.session.msg("shutdown_request", {"restart": True})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 20, "control")["content"]["status"] == "ok"
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "error"


def crash_with_a_session_open(kc, debug: DebugClient) -> None:
    msg_id = kc.execute("import os; os._exit(1)")
    assert get_reply(kc, msg_id, 30)["content"]["ename"] == "WorkerDied"


@pytest.mark.parametrize("end_worker", [restart_while_stopped, crash_with_a_session_open])
def test_a_new_worker_ends_the_session_and_can_debug_again(kernel, kc, debug, end_worker):
    debug.start()
    set_breakpoint(debug, CELL, BREAK_LINE)
    kernel.remember_children()
    end_worker(kc, debug)
    assert debug.wait_event("terminated")["event"] == "terminated"
    wait_for_new_worker(kc)
    kernel.remember_children()
    info = debug.ok("debugInfo")
    assert (info["isStarted"], info["breakpoints"], info["stoppedThreads"]) == (False, [], [])

    debug = DebugClient(kc)  # JupyterLab starts over with a new session
    debug.start()
    path = set_breakpoint(debug, CELL, BREAK_LINE)
    msg_id = kc.execute(CELL)
    top = debug.stop_at(debug.wait_event("stopped"))
    assert (top["source"]["path"], top["line"]) == (path, BREAK_LINE)
    debug.ok("continue", threadId=debug.ok("debugInfo")["stoppedThreads"][0])
    assert get_reply(kc, msg_id, 30)["content"]["status"] == "ok"
    debug.ok("disconnect", restart=False, terminateDebuggee=False)


def wait_for_new_worker(kc) -> None:
    """A new worker answers: a cell runs (its reply proves the worker is there)."""
    reply, _ = execute(kc, "1 + 1", timeout=30)
    assert reply["content"]["status"] == "ok"
