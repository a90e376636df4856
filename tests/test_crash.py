"""The fault matrix: whatever kills the worker, every request is answered and the
same client goes on, on the same connection, with a fresh worker."""

from __future__ import annotations

import os
import queue
import signal

import psutil
import pytest

from tests.helpers.heartbeat import HeartbeatMonitor
from tests.helpers.kernel import (
    alive,
    collect_iopub,
    execute,
    get_reply,
    kernel_statuses_until_idle,
)
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.timeout(90)


def worker_pid(kc) -> int:
    return kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]["worker_pid"]


def no_more_shell_replies(kc, window: float = 0.3) -> bool:
    try:
        extra = kc.get_shell_msg(timeout=window)
    except queue.Empty:
        return True
    raise AssertionError(f"unexpected extra reply: {extra['msg_type']} "
                         f"to {extra['parent_header'].get('msg_id')}")



def assert_fresh_and_usable(kernel, kc, old_pid):
    reply, msgs = execute(kc, "'canary' in dir(), 1 + 1", timeout=30)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1  # a fresh shell counts from 1
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert results == ["(False, 2)"]
    kernel.remember_children()
    assert worker_pid(kc) != old_pid
    assert kernel.proc.poll() is None  # the supervisor never died


def crash_case(kernel, kc, code, expect_evalue, expect_in_traceback=()):
    execute(kc, "canary = 1")
    old = worker_pid(kc)
    kernel.remember_children()
    with HeartbeatMonitor(kernel.connection_file) as hb:
        msg_id = kc.execute(code)
        reply = get_reply(kc, msg_id, 30)
        msgs = collect_iopub(kc, msg_id, 30)
        statuses = kernel_statuses_until_idle(kc)
        assert_fresh_and_usable(kernel, kc, old)
    assert hb.missed == 0 and hb.answered > 0
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "WorkerDied"
    inputs = [m["content"]["execution_count"] for m in msgs if m["msg_type"] == "execute_input"]
    assert content["execution_count"] == inputs[0]  # the prompt gets its number
    assert expect_evalue in content["evalue"]
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "WorkerDied"
    traceback = "\n".join(content["traceback"])
    for fragment in expect_in_traceback:
        assert fragment in traceback
    assert msgs[-1]["content"] == {"execution_state": "idle"}
    assert "restarting" not in statuses  # JupyterLab would show a "kernel died" dialog
    assert statuses[-2:] == ["starting", "idle"]
    assert no_more_shell_replies(kc)
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE


def test_os_exit(kernel, kc):
    crash_case(kernel, kc, "import os; os._exit(1)", "worker exited with code 1")


def test_segfault_shows_faulthandler_and_the_cell_line(kernel, kc):
    code = "import ctypes\nx = 1\nctypes.string_at(0)"
    crash_case(kernel, kc, code, "worker killed by SIGSEGV",
               ["Segmentation fault", "line 3: ctypes.string_at(0)"])


def test_abort(kernel, kc):
    crash_case(kernel, kc, "import os; os.abort()", "worker killed by SIGABRT",
               ["Aborted"])


def test_sigkill_from_outside_while_busy(kernel, kc):
    code = "import os\nos.kill(os.getpid(), 9)\nwhile True: pass"
    crash_case(kernel, kc, code, "worker killed by SIGKILL")


def test_sigkill_from_outside_while_idle(kernel, kc):
    execute(kc, "canary = 1")
    old = worker_pid(kc)
    kernel.remember_children()
    with HeartbeatMonitor(kernel.connection_file) as hb:
        os.kill(old, signal.SIGKILL)
        assert kernel_statuses_until_idle(kc) == ["starting", "idle"]
        assert_fresh_and_usable(kernel, kc, old)
    assert hb.missed == 0
    assert no_more_shell_replies(kc)


def test_requests_sent_while_the_worker_dies_and_restarts(kernel, kc):
    old = worker_pid(kc)
    kernel.remember_children()
    crash = kc.execute("input(); import os; os._exit(1)", allow_stdin=True)
    kc.get_stdin_msg(timeout=10)  # the cell is running and waits for our word
    queued_execute = kc.execute("queued = 1")
    queued_complete = kc.complete("impo", 4)
    info = kc.kernel_info()
    replies = {}
    # kernel_info is answered by the supervisor at once: both requests before it are queued.
    info_reply = get_reply(kc, info, 10)
    replies[info] = info_reply
    kc.input("die now")
    while len(replies) < 4:
        msg = kc.get_shell_msg(timeout=30)
        parent = msg["parent_header"]["msg_id"]
        assert parent not in replies, "two replies to one request"
        replies[parent] = msg
    assert replies[crash]["content"]["ename"] == "WorkerDied"
    assert replies[queued_execute]["content"]["status"] == "aborted"  # stop_on_error
    assert replies[queued_complete]["content"]["status"] == "ok"  # ran on the new worker
    assert "import" in replies[queued_complete]["content"]["matches"]
    assert replies[info]["msg_type"] == "kernel_info_reply"
    assert no_more_shell_replies(kc)
    assert worker_pid(kc) != old


def test_user_subprocesses_die_with_their_worker(kernel, kc):
    reply, msgs = execute(kc, "import subprocess\np = subprocess.Popen(['sleep', '1000'])\n"
                              "print(p.pid)")
    sleeper = int([m["content"]["text"] for m in msgs if m["msg_type"] == "stream"][0])
    kernel.known_pids.add(sleeper)
    assert psutil.pid_exists(sleeper)
    msg_id = kc.execute("import os; os._exit(1)")
    get_reply(kc, msg_id, 30)
    wait_until(lambda: not alive(sleeper), 10, "the user's subprocess to die")


def test_sigkill_of_the_supervisor_leaves_no_worker(kernel, kc):
    worker = worker_pid(kc)
    tree = kernel.remember_children()  # the worker and the fork server
    assert worker in tree and len(tree) >= 2
    os.kill(kernel.pid, signal.SIGKILL)
    kernel.proc.wait(timeout=10)
    wait_until(lambda: not any(alive(pid) for pid in tree), 10, "the orphans to die")


def test_orphaned_grandchildren_are_reaped_by_the_supervisor(kernel, kc):
    """A background job of a shell the cell ran outlives its parent: it is re-parented
    to the supervisor (a child subreaper), which reaps it when it ends: no zombie."""
    kernel.remember_children()
    job = "sleep 2 >/dev/null 2>&1 & echo $!"  # a background job its shell leaves behind
    reply, msgs = execute(kc, "import subprocess\n"
                              f"out = subprocess.run(['sh', '-c', {job!r}],\n"
                              "                     capture_output=True, text=True)\n"
                              "print(out.stdout.strip())")
    orphan = int([m["content"]["text"] for m in msgs if m["msg_type"] == "stream"][0])
    kernel.known_pids.add(orphan)
    assert psutil.Process(orphan).ppid() == kernel.pid
    wait_until(lambda: not psutil.pid_exists(orphan), 10, "the orphan to be reaped")



def test_open_comms_are_closed_and_pending_input_cancelled(kernel, kc):
    kernel.remember_children()
    code = ("from comm import create_comm\n"
            "c = create_comm(target_name='t', data={})\n"
            "print(c.comm_id)")
    _, msgs = execute(kc, code)
    comm_id = [m["content"]["text"].strip() for m in msgs if m["msg_type"] == "stream"][0]
    worker = worker_pid(kc)
    msg_id = kc.execute("input('name? ')", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    assert request["content"]["prompt"] == "name? "
    os.kill(worker, signal.SIGKILL)  # dies while the frontend is being asked
    reply = get_reply(kc, msg_id, 30)
    assert reply["content"]["ename"] == "WorkerDied"
    closes = [m for m in collect_iopub(kc, msg_id, 30) if m["msg_type"] == "comm_close"]
    assert [m["content"]["comm_id"] for m in closes] == [comm_id]
    kc.input("too late")  # the input_request died with its worker: this is dropped
    reply, msgs = execute(kc, "1 + 1", timeout=30)
    assert reply["content"]["status"] == "ok"
    assert no_more_shell_replies(kc)
    log = kernel.stderr()
    assert '"msg_type": "input_reply"' in log and "message_dropped" in log


def test_output_printed_just_before_the_crash_is_not_lost(kernel, kc):
    kernel.remember_children()
    msg_id = kc.execute("import sys, os\nprint('last words')\nsys.stdout.flush()\nos._exit(1)")
    get_reply(kc, msg_id, 30)
    msgs = collect_iopub(kc, msg_id, 30)
    kinds = [m["msg_type"] for m in msgs]
    texts = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"]
    assert texts == ["last words\n"]
    assert kinds.index("stream") < kinds.index("error")
    kernel_statuses_until_idle(kc)
    kernel.remember_children()
