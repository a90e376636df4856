"""Interrupts that always work, and limits the user can see."""

from __future__ import annotations

import pytest

from tests.helpers.heartbeat import HeartbeatMonitor
from tests.helpers.kernel import collect_iopub, execute, get_reply, start_kernel

pytestmark = pytest.mark.timeout(90)

IGNORES_SIGINT = ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                  "print('ignoring', flush=True)\nwhile True:\n    pass")


@pytest.fixture
def limited(tmp_path):
    kernels = []

    def start(*flags):
        kernel = start_kernel(tmp_path, *flags)
        kernels.append(kernel)
        return kernel, kernel.client()

    yield start
    for kernel in kernels:
        kernel.stop()


def wait_for_input(kc, msg_id, timeout=10):
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_input":
            return


def wait_for_stream(kc, msg_id, text, timeout=10):
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream" \
                and text in msg["content"]["text"]:
            return


def interrupt(kc) -> dict:
    request = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(request)
    return get_reply(kc, request["header"]["msg_id"], 10, "control")["content"]


def assert_fresh(kernel, kc):
    reply, msgs = execute(kc, "1 + 1", timeout=30)
    assert reply["content"]["status"] == "ok" and reply["content"]["execution_count"] == 1
    kernel.remember_children()
    assert kernel.proc.poll() is None


def test_code_ignoring_sigint_is_restarted_after_the_grace_period(limited):
    kernel, kc = limited("--interrupt-timeout", "1")
    kernel.remember_children()
    with HeartbeatMonitor(kernel.connection_file) as hb:
        msg_id = kc.execute(IGNORES_SIGINT)
        wait_for_stream(kc, msg_id, "ignoring")  # SIGINT is ignored from here on
        assert interrupt(kc) == {"status": "ok", "action": "interrupted"}
        reply = get_reply(kc, msg_id, 30)
        assert_fresh(kernel, kc)
    assert hb.missed == 0
    assert reply["content"]["ename"] == "WorkerRestarted"
    assert reply["content"]["evalue"] == ("did not respond to interrupt within 1 s; "
                                          "worker restarted, variables lost")
    assert '"event": "interrupt_escalated"' in kernel.stderr()


def test_a_second_interrupt_escalates_at_once(limited):
    kernel, kc = limited("--interrupt-timeout", "60")
    kernel.remember_children()
    msg_id = kc.execute(IGNORES_SIGINT)
    wait_for_stream(kc, msg_id, "ignoring")
    assert interrupt(kc)["action"] == "interrupted"
    assert interrupt(kc)["action"] == "restarted"
    reply = get_reply(kc, msg_id, 20)  # long before the 60 s grace period
    assert reply["content"]["evalue"].startswith("was interrupted twice; worker restarted")
    errors = [m["content"]["ename"] for m in collect_iopub(kc, msg_id) if m["msg_type"] == "error"]
    assert errors == ["WorkerRestarted"]
    assert_fresh(kernel, kc)


def test_interrupt_when_idle_says_so(kc):
    assert interrupt(kc) == {"status": "ok", "action": "none"}


def test_interrupt_during_input_cancels_it(kc):
    execute(kc, "kept = 5")
    msg_id = kc.execute("name = input('name? ')", allow_stdin=True)
    assert kc.get_stdin_msg(timeout=10)["content"]["prompt"] == "name? "
    interrupt(kc)
    reply = get_reply(kc, msg_id, 10)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert reply["content"]["evalue"] == "Interrupted by user"
    _, msgs = execute(kc, "kept")
    assert [m["content"]["data"]["text/plain"] for m in msgs
            if m["msg_type"] == "execute_result"] == ["5"]


def test_memory_limit_warns_then_stops_the_worker(limited):
    kernel, kc = limited("--memory-limit", "400M")
    kernel.remember_children()
    limits = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]["limits"]
    assert limits["memory_limit_bytes"] == 400 * 2**20 and limits["memory_limit_source"] == "flag"
    code = ("import time\nblocks = []\nwhile True:\n"
            "    blocks.append(b\"x\" * (10 * 2**20))  # touched, so resident\n"
            "    time.sleep(0.05)")  # ~200 MB/s: several 10 Hz samples between 80% and 100%
    msg_id = kc.execute(code)
    reply = get_reply(kc, msg_id, 60)
    msgs = collect_iopub(kc, msg_id)
    warnings = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"
                and m["content"]["name"] == "stderr"]
    assert len(warnings) == 1 and "of its 400 MiB memory limit" in warnings[0]
    kinds = [m["msg_type"] for m in msgs]
    assert kinds.index("stream") < kinds.index("error")  # the warning came first
    assert reply["content"]["ename"] == "MemoryLimitExceeded"
    assert reply["content"]["evalue"].startswith("the worker used ")
    assert "of its 400 MiB limit" in reply["content"]["evalue"]
    assert_fresh(kernel, kc)
    assert '"event": "memory_limit_exceeded"' in kernel.stderr()


def test_cell_timeout_interrupts_the_cell(limited):
    kernel, kc = limited("--cell-timeout", "1")
    kernel.remember_children()
    execute(kc, "kept = 1")
    msg_id = kc.execute("while True:\n    pass")
    reply = get_reply(kc, msg_id, 30)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    notes = [m["content"]["text"] for m in collect_iopub(kc, msg_id)
             if m["msg_type"] == "stream"]
    assert notes == ["kernelsvc: the cell ran past its time limit of 1 s; interrupting it\n"]
    reply, _ = execute(kc, "kept")
    assert reply["content"]["status"] == "ok"


def test_per_request_timeout_in_metadata(kc):
    msg = kc.session.msg("execute_request", {"code": "while True:\n    pass", "silent": False,
                                             "store_history": True, "user_expressions": {},
                                             "allow_stdin": False, "stop_on_error": True},
                         metadata={"timeout": 0.5})
    kc.shell_channel.send(msg)
    reply = get_reply(kc, msg["header"]["msg_id"], 30)
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def test_usage_request_while_busy(kernel, kc):
    msg_id = kc.execute("while True:\n    pass")
    wait_for_input(kc, msg_id)
    request = kc.session.msg("usage_request", {})
    kc.control_channel.send(request)
    usage = get_reply(kc, request["header"]["msg_id"], 10, "control")["content"]
    assert usage["kernel_memory"] > 10 * 2**20  # the worker holds IPython
    assert usage["pid"] == kernel.pid
    assert usage["host_virtual_memory"]["total"] > 0 and usage["cpu_count"] >= 1
    assert 0 <= usage["host_cpu_percent"] <= 100
    interrupt(kc)
    assert get_reply(kc, msg_id, 10)["content"]["ename"] == "KeyboardInterrupt"


def test_workers_offer_themselves_to_the_oom_killer(kernel, kc):
    worker = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]["worker_pid"]
    kernel.remember_children()
    with open(f"/proc/{worker}/oom_score_adj") as f:
        assert f.read().strip() == "1000"
    with open(f"/proc/{kernel.pid}/oom_score_adj") as f:
        assert int(f.read().strip()) < 1000  # the supervisor is spared
