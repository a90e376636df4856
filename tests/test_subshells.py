"""Subshells (JEP 91): create/list/delete on control, concurrent shells in one namespace,
and what happens to them when the worker dies — shown with a real client."""

from __future__ import annotations

import pytest

from tests.helpers.kernel import collect_iopub, execute, get_reply, kernel_statuses_until_idle

pytestmark = pytest.mark.timeout(90)


def control(kc, msg_type: str, content: dict | None = None, timeout: float = 10) -> dict:
    msg = kc.session.msg(msg_type, content or {})
    kc.control_channel.send(msg)
    return get_reply(kc, msg["header"]["msg_id"], timeout, channel="control")


def create_subshell(kc) -> str:
    reply = control(kc, "create_subshell_request")
    assert reply["msg_type"] == "create_subshell_reply"
    assert reply["content"]["status"] == "ok"
    return reply["content"]["subshell_id"]


def list_subshells(kc) -> list[str]:
    reply = control(kc, "list_subshell_request")
    assert reply["content"]["status"] == "ok"
    return reply["content"]["subshell_id"]


def send_execute(kc, code: str, subshell_id: str | None = None, **content) -> str:
    """An execute_request on shell, to a subshell when ``subshell_id`` is given."""
    body = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True, **content}
    msg = kc.session.msg("execute_request", body)
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def replies_for(kc, msg_ids: list[str], timeout: float = 30) -> dict[str, dict]:
    """The shell replies to ``msg_ids``, whatever order they come in."""
    replies: dict[str, dict] = {}
    while len(replies) < len(msg_ids):
        msg = kc.get_shell_msg(timeout=timeout)
        parent = msg["parent_header"].get("msg_id")
        if parent in msg_ids:
            assert parent not in replies, f"two replies to {msg['msg_type']}"
            replies[parent] = msg
    return replies


def iopub_for(kc, msg_ids: list[str], timeout: float = 30) -> dict[str, list[dict]]:
    """IOPub messages of several concurrent requests, each up to its idle status."""
    msgs: dict[str, list[dict]] = {msg_id: [] for msg_id in msg_ids}
    idle: set[str] = set()
    while len(idle) < len(msg_ids):
        msg = kc.get_iopub_msg(timeout=timeout)
        parent = msg["parent_header"].get("msg_id")
        if parent in msgs:
            msgs[parent].append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle.add(parent)
    return msgs


def value_of(kc, expression: str):
    reply, _ = execute(kc, "", user_expressions={"x": expression})
    value = reply["content"]["user_expressions"]["x"]
    assert value["status"] == "ok", value
    return value["data"]["text/plain"]


def test_kernel_info_advertises_subshells(kc):
    info = kc.kernel_info(reply=True, timeout=10)["content"]
    assert "kernel subshells" in info["supported_features"]


def test_create_list_delete_and_unknown_ids(kc):
    assert list_subshells(kc) == []
    first, second = create_subshell(kc), create_subshell(kc)
    assert first != second
    assert sorted(list_subshells(kc)) == sorted([first, second])

    reply = control(kc, "delete_subshell_request", {"subshell_id": first})
    assert reply["msg_type"] == "delete_subshell_reply"
    assert reply["content"]["status"] == "ok"
    assert list_subshells(kc) == [second]

    again = control(kc, "delete_subshell_request", {"subshell_id": first})
    assert again["content"]["status"] == "error"
    assert again["content"]["ename"] == "UnknownSubshellError"

    msg_id = send_execute(kc, "ran = True", subshell_id=first)
    reply = get_reply(kc, msg_id, timeout=10)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "UnknownSubshellError"
    assert first in reply["content"]["evalue"]
    states = [m["content"]["execution_state"] for m in collect_iopub(kc, msg_id)
              if m["msg_type"] == "status"]
    assert states == ["busy", "idle"]
    assert value_of(kc, "'ran' in dir()") == "False"  # it never ran anywhere


def test_subshells_run_concurrently_sharing_the_namespace(kc):
    execute(kc, "import threading, time\nevents = []\nlock = threading.Lock()")
    shells = [create_subshell(kc), create_subshell(kc)]
    code = ("with lock: events.append(('start', {n}))\n"
            "time.sleep(1.0)\n"
            "with lock: events.append(('end', {n}))\n"
            "{n}")
    msg_ids = [send_execute(kc, code.format(n=n), subshell_id=s) for n, s in enumerate(shells)]
    replies = replies_for(kc, msg_ids)
    assert all(r["content"]["status"] == "ok" for r in replies.values())
    outputs = iopub_for(kc, msg_ids)
    for msg_id, n in zip(msg_ids, range(2), strict=True):
        results = [m for m in outputs[msg_id] if m["msg_type"] == "execute_result"]
        assert results[0]["content"]["data"]["text/plain"] == str(n)
    events = eval(value_of(kc, "events"))  # the main shell sees what the subshells did
    kinds = [kind for kind, _ in events]
    # Both cells started before either finished: they ran at the same time.
    assert kinds == ["start", "start", "end", "end"], events


def test_main_shell_is_not_blocked_by_a_subshell(kc):
    execute(kc, "import threading\ngo = threading.Event()")
    subshell = create_subshell(kc)
    waiting = send_execute(kc, "print('subshell waited', go.wait(30))", subshell_id=subshell)
    # The main shell runs (and releases the subshell) while the subshell's cell waits.
    main = send_execute(kc, "go.set()\n'main ran'")
    replies = replies_for(kc, [main, waiting])
    assert replies[main]["content"]["status"] == "ok"
    assert replies[waiting]["content"]["status"] == "ok"
    streams = [m for m in iopub_for(kc, [main, waiting])[waiting] if m["msg_type"] == "stream"]
    # Its output is parented to its own request, not to the main shell's.
    assert "".join(m["content"]["text"] for m in streams) == "subshell waited True\n"


def test_interrupt_reaches_a_subshell(kc):
    execute(kc, "import threading\nspinning = threading.Event()")
    subshell = create_subshell(kc)
    msg_id = send_execute(kc, "subshell_started = True\nspinning.set()\nwhile True: pass",
                          subshell_id=subshell)
    reply, _ = execute(kc, "spinning.wait(20)")  # its code runs now
    assert reply["content"]["status"] == "ok"
    reply = control(kc, "interrupt_request")
    assert reply["content"]["action"] == "interrupted"
    result = get_reply(kc, msg_id, timeout=20)
    assert result["content"]["status"] == "error"
    assert result["content"]["ename"] == "KeyboardInterrupt"
    assert value_of(kc, "subshell_started") == "True"  # the namespace survived


def wait_started(kc, *msg_ids: str, timeout: float = 10) -> None:
    """Wait for the requests' execute_input: their code is about to run."""
    started: set[str] = set()
    while started != set(msg_ids):
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") in msg_ids and msg["msg_type"] == "execute_input":
            started.add(msg["parent_header"]["msg_id"])


def test_delete_answers_waiting_requests_and_lets_the_running_one_finish(kc):
    execute(kc, "import threading\nrelease = threading.Event()")
    subshell = create_subshell(kc)
    running = send_execute(kc, "release.wait(30)", subshell_id=subshell)
    wait_started(kc, running)
    queued = send_execute(kc, "never = 1", subshell_id=subshell)
    # The queued request reaches the supervisor before the delete (one client, in order
    # per channel is not guaranteed across channels): wait for it to be queued.
    assert control(kc, "list_subshell_request")["content"]["subshell_id"] == [subshell]
    reply = control(kc, "delete_subshell_request", {"subshell_id": subshell})
    assert reply["content"]["status"] == "ok"
    assert list_subshells(kc) == []
    release = send_execute(kc, "release.set()")
    replies = replies_for(kc, [running, queued, release])
    assert replies[running]["content"]["status"] == "ok"
    assert replies[queued]["content"]["status"] == "error"
    assert replies[queued]["content"]["ename"] == "SubshellDeleted"
    assert value_of(kc, "'never' in dir()") == "False"


def test_worker_death_answers_every_subshell_and_ends_them(kc):
    execute(kc, "import threading\nhold = threading.Event()")
    shells = [create_subshell(kc), create_subshell(kc)]
    running = [send_execute(kc, "hold.wait(60)", subshell_id=s) for s in shells]
    wait_started(kc, *running)
    queued = send_execute(kc, "queued = 1", subshell_id=shells[0])
    assert sorted(list_subshells(kc)) == sorted(shells)  # the queued request is in
    crash = send_execute(kc, "import os; os._exit(3)")
    replies = replies_for(kc, [*running, queued, crash])
    for msg_id in [*running, crash]:
        content = replies[msg_id]["content"]
        assert content["status"] == "error"
        assert content["ename"] == "WorkerDied", content
        assert "exited with code 3" in content["evalue"]
    assert replies[queued]["content"]["ename"] == "SubshellLost"
    kernel_statuses_until_idle(kc)
    assert list_subshells(kc) == []
    gone = send_execute(kc, "1", subshell_id=shells[0])
    assert get_reply(kc, gone)["content"]["ename"] == "UnknownSubshellError"
    fresh = create_subshell(kc)  # and new ones work on the new worker
    msg_id = send_execute(kc, "'fresh'", subshell_id=fresh)
    assert get_reply(kc, msg_id, timeout=20)["content"]["status"] == "ok"


def test_comm_messages_to_a_subshell_that_ended_run_on_the_main_shell(kc):
    """JupyterLab sends widget comm messages over a subshell it created once and is not told
    that subshells end with their worker: those messages still reach the comm."""
    stale = create_subshell(kc)
    crash = send_execute(kc, "import os; os._exit(1)")
    assert get_reply(kc, crash, timeout=20)["content"]["ename"] == "WorkerDied"
    kernel_statuses_until_idle(kc)
    execute(kc, "from comm import create_comm\nreceived = []\nc = create_comm(target_name='t')\n"
                "c.on_msg(lambda m: received.append(m['content']['data']))")
    comm_id = value_of(kc, "c.comm_id").strip("'")
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"x": 1}})
    msg["header"]["subshell_id"] = stale
    kc.shell_channel.send(msg)
    collect_iopub(kc, msg["header"]["msg_id"])  # handled: its idle status came
    assert value_of(kc, "received") == "[{'x': 1}]"
