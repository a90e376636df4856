"""What the supervisor does on its own: heartbeat, control, routing, stopping, signatures."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import time

import pytest
import zmq
from jupyter_client.session import Session

from tests.helpers.kernel import alive, collect_iopub, execute, get_reply
from tests.helpers.waiting import wait_until

BUSY_LOOP = "while True:\n    pass"


def wait_busy(kc, msg_id, timeout=10):
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "busy"):
            return


def ping_heartbeat(connection_file, timeout=2.0) -> bool:
    info = json.loads(connection_file.read_text())
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(f"tcp://{info['ip']}:{info['hb_port']}")
    try:
        sock.send(b"ping")
        if sock.poll(int(timeout * 1000)):
            return sock.recv() == b"ping"
        return False
    finally:
        sock.close(linger=0)


def test_heartbeat_and_control_answer_while_worker_busy(kernel, kc):
    msg_id = kc.execute(BUSY_LOOP)
    wait_busy(kc, msg_id)
    assert ping_heartbeat(kernel.connection_file)
    info = kc.kernel_info(reply=True, timeout=5)  # on shell: cached, not queued behind the loop
    assert info["content"]["implementation"] == "kernelsvc"
    control = kc.session.msg("kernel_info_request", {})
    kc.control_channel.send(control)
    assert get_reply(kc, control["header"]["msg_id"], 5, "control")["content"]["status"] == "ok"
    kc.control_channel.send(kc.session.msg("interrupt_request", {}))
    reply = get_reply(kc, msg_id, 10)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def test_interrupt_request_keeps_namespace(kc):
    execute(kc, "survivor = 7")
    msg_id = kc.execute(BUSY_LOOP)
    wait_busy(kc, msg_id)
    request = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 5, "control")["content"]["status"] == "ok"
    content = get_reply(kc, msg_id, 10)["content"]
    assert content["ename"] == "KeyboardInterrupt"
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(content["traceback"]))
    # In the cell (or before it started: no frames), never in the kernel's own code.
    assert "KeyboardInterrupt" in traceback
    assert "interrupts.py" not in traceback and "handlers.py" not in traceback
    reply, msgs = execute(kc, "survivor * 6")
    results = [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"]
    assert results == [{"text/plain": "42"}]


def test_sigint_meant_for_another_request_does_not_stop_the_cell(kc):
    """The supervisor names the request each SIGINT is for (the next one may already run
    when it lands); the cell plays the supervisor, signalling its own process."""
    code = (
        "import os, signal\n"
        "from kernelsvc.worker import interrupts\n"
        "def sigint_for(msg_id):\n"
        "    with open(interrupts._target_file, 'w') as f:\n"
        "        f.write(msg_id)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "sigint_for('a-request-that-ended')\n"
        "survived = True\n"
        "sigint_for('')  # for no request in particular: for this one\n"
        "reached = True"
    )
    reply, _ = execute(kc, code)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, msgs = execute(kc, "survived, 'reached' in dir()")
    results = [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"]
    assert results == [{"text/plain": "(True, False)"}]


def test_user_code_can_still_interrupt_itself_after_an_interrupt(kc):
    msg_id = kc.execute(BUSY_LOOP)
    wait_busy(kc, msg_id)
    kc.control_channel.send(kc.session.msg("interrupt_request", {}))
    assert get_reply(kc, msg_id, 10)["content"]["ename"] == "KeyboardInterrupt"
    # That interrupt's target was used up: a SIGINT from the cell itself is for the cell.
    reply, _ = execute(kc, "import _thread, time\n_thread.interrupt_main()\n"
                           "for _ in range(500):\n    time.sleep(0.01)")
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def test_interrupt_while_idle_is_a_no_op(kc):
    request = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 5, "control")["content"]["status"] == "ok"
    reply, _ = execute(kc, "1 + 1")
    assert reply["content"]["status"] == "ok"


def test_sigint_to_supervisor_interrupts_the_cell(kernel, kc):
    msg_id = kc.execute(BUSY_LOOP)
    wait_busy(kc, msg_id)
    kernel.proc.send_signal(signal.SIGINT)  # what jupyter_client sends in signal mode
    assert get_reply(kc, msg_id, 10)["content"]["ename"] == "KeyboardInterrupt"
    assert kernel.proc.poll() is None


@pytest.mark.timeout(30)
def test_shutdown_request_replies_and_exits_fast(kernel, kc):
    workers = kernel.remember_children()
    assert workers
    request = kc.session.msg("shutdown_request", {"restart": False})
    started = time.monotonic()
    kc.control_channel.send(request)
    reply = get_reply(kc, request["header"]["msg_id"], 5, "control")
    assert reply["content"] == {"status": "ok", "restart": False}
    assert kernel.proc.wait(timeout=5) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    wait_until(lambda: all(not alive(pid) for pid in workers), 5, "worker exit")


@pytest.mark.timeout(30)
def test_sigterm_stops_worker_and_exits_zero(kernel, kc):
    workers = kernel.remember_children()
    started = time.monotonic()
    kernel.proc.terminate()
    assert kernel.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 1.0
    wait_until(lambda: all(not alive(pid) for pid in workers), 5, "worker exit")


def test_shutdown_reply_also_on_iopub(kc):
    request = kc.session.msg("shutdown_request", {"restart": False})
    kc.control_channel.send(request)
    while True:
        msg = kc.get_iopub_msg(timeout=5)
        if msg["msg_type"] == "shutdown_reply":
            assert msg["parent_header"]["msg_id"] == request["header"]["msg_id"]
            break


def test_forged_message_is_dropped_and_logged(kernel, kc):
    forger = Session(key=b"not-the-key")
    info = json.loads(kernel.connection_file.read_text())
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
    try:
        bad = forger.msg("execute_request", {"code": "hacked = 1", "silent": False})
        sock.send_multipart(forger.serialize(bad))
        unsigned = Session(key=b"").serialize(Session(key=b"").msg("kernel_info_request", {}))
        sock.send_multipart(unsigned)
        sock.send_multipart([b"garbage"])
        assert not sock.poll(500), "a forged message was answered"
    finally:
        sock.close(linger=0)
    _, msgs = execute(kc, "print('hacked' in dir())")
    assert [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"] == ["False\n"]
    log = wait_until(lambda: _rejections(kernel.stderr()), 5, "message_rejected log")
    reasons = {event["reason"] for event in log}
    assert {"invalid signature", "unsigned message", "no delimiter"} <= reasons
    assert "not-the-key" not in kernel.stderr() and "hacked" not in kernel.stderr()


def test_replayed_message_is_rejected(kernel, kc):
    info = json.loads(kernel.connection_file.read_text())
    session = Session(key=info["key"].encode())
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
    try:
        frames = session.serialize(session.msg("kernel_info_request", {}))
        sock.send_multipart(frames)
        assert sock.poll(5000), "the first copy must be answered"
        sock.recv_multipart()
        sock.send_multipart(frames)  # the very same signature again
        assert not sock.poll(500), "a replayed message was answered"
    finally:
        sock.close(linger=0)
    log = wait_until(lambda: _rejections(kernel.stderr()), 5, "message_rejected log")
    assert "duplicate signature" in {event["reason"] for event in log}


def test_kernel_info_content(kc):
    content = kc.kernel_info(reply=True, timeout=10)["content"]
    assert content["status"] == "ok"
    assert content["implementation"] == "kernelsvc"
    major, minor = map(int, content["protocol_version"].split(".")[:2])
    assert (major, minor) >= (5, 3)
    assert content["language_info"]["name"] == "python"
    assert content["language_info"]["file_extension"] == ".py"
    assert content["language_info"]["version"].startswith(
        f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert "IPython" in content["banner"]
    assert content["help_links"] and all("url" in link for link in content["help_links"])
    assert isinstance(content["supported_features"], list)
    assert content["kernelsvc"]["worker_pid"] != content["kernelsvc"]["supervisor_pid"]


def test_requests_from_one_client_are_answered_in_order(kc):
    ids = [kc.execute(f"{i} * 2") for i in range(20)]
    replies = [kc.get_shell_msg(timeout=20) for _ in ids]
    assert [r["parent_header"]["msg_id"] for r in replies] == ids
    assert all(r["content"]["status"] == "ok" for r in replies)
    for i, msg_id in enumerate(ids):
        msgs = collect_iopub(kc, msg_id)
        results = [m["content"]["data"]["text/plain"] for m in msgs
                   if m["msg_type"] == "execute_result"]
        assert results == [str(i * 2)]


def test_supervisor_never_imports_ipython():
    code = (
        "import pkgutil, importlib, sys\n"
        "import kernelsvc.supervisor as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'kernelsvc.supervisor.'):\n"
        "    if m.name != 'kernelsvc.supervisor.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('IPython', 'ipykernel'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _rejections(text):
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "message_rejected":
            events.append(event)
    return events



@pytest.mark.timeout(30)
def test_shutdown_while_the_worker_is_still_starting(tmp_path):
    from jupyter_client import BlockingKernelClient

    from tests.helpers.kernel import start_kernel

    kernel = start_kernel(tmp_path)
    try:
        kc = BlockingKernelClient()
        kc.load_connection_file(str(kernel.connection_file))
        kc.start_channels()
        request = kc.session.msg("shutdown_request", {"restart": False})
        kc.control_channel.send(request)  # no wait_for_ready: the worker may not be up yet
        reply = get_reply(kc, request["header"]["msg_id"], 10, "control")
        assert reply["content"]["status"] == "ok"
        assert kernel.proc.wait(timeout=10) == 0
        assert "Traceback" not in kernel.stderr()
        kc.stop_channels()
    finally:
        kernel.stop()


def test_interrupt_that_lands_before_the_cell_starts_is_not_lost(kc):
    """The worker says busy before IPython starts the cell: an interrupt sent at once
    lands in that gap, and must still stop the cell when it starts."""
    for _ in range(3):
        msg_id = kc.execute(BUSY_LOOP)
        wait_busy(kc, msg_id)  # dispatched to the worker: the supervisor will signal it
        kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        reply = get_reply(kc, msg_id, 15)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert "interrupts.py" not in "".join(reply["content"]["traceback"])
    reply, _ = execute(kc, "1 + 1")
    assert reply["content"]["status"] == "ok"


@pytest.mark.timeout(30)
def test_shutdown_answers_a_request_sent_ahead_once(kernel, kc):
    """The queued request is already in the worker when the shutdown comes; the running
    one then finishes: the queued one must not start, and gets one reply."""
    running = kc.execute("import time\ntime.sleep(0.2)")  # ends within the stop timeout
    wait_busy(kc, running)
    queued = kc.execute("ran = True")
    request = kc.session.msg("shutdown_request", {"restart": False})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 5, "control")["content"]["status"] == "ok"
    assert kernel.proc.wait(timeout=10) == 0
    replies = {}
    while True:
        try:
            msg = kc.get_shell_msg(timeout=0.5)
        except queue.Empty:
            break
        parent = msg["parent_header"]["msg_id"]
        assert parent not in replies, "two replies to one request"
        replies[parent] = msg["content"]
    assert replies[running]["status"] == "ok"
    assert replies[queued]["ename"] == "KernelShutdown"


@pytest.mark.timeout(30)
def test_shutdown_while_busy_answers_the_running_request(kernel, kc):
    kernel.remember_children()
    msg_id = kc.execute(BUSY_LOOP)
    wait_busy(kc, msg_id)
    queued = kc.execute("1 + 1")
    request = kc.session.msg("shutdown_request", {"restart": False})
    kc.control_channel.send(request)
    assert get_reply(kc, request["header"]["msg_id"], 5, "control")["content"]["status"] == "ok"
    running_reply = get_reply(kc, msg_id, 10)
    assert running_reply["content"]["ename"] == "KernelShutdown"
    queued_reply = get_reply(kc, queued, 10)
    assert queued_reply["content"]["status"] == "error"
    assert kernel.proc.wait(timeout=10) == 0


def test_a_header_with_odd_keys_is_still_answered(kernel, kc):
    msg = kc.session.msg("execute_request", {"code": "6 * 7", "silent": False,
                                             "store_history": True, "user_expressions": {},
                                             "allow_stdin": False, "stop_on_error": True})
    msg["header"]["header"] = {"msg_id": "confusing"}  # a key jupyter_client treats specially
    kc.shell_channel.send(msg)
    reply = get_reply(kc, msg["header"]["msg_id"], 10)
    assert reply["content"]["status"] == "ok"
    reply, _ = execute(kc, "1 + 1")
    assert reply["content"]["status"] == "ok"
    assert kernel.proc.poll() is None
    assert "message_handling_failed" not in kernel.stderr()
