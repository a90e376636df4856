"""The basic promise: a dead worker costs variables, never the connection.

(The full crash matrix comes with the crash-isolation work.)
"""

from __future__ import annotations

import pytest

from tests.helpers.kernel import collect_iopub, execute, get_reply


@pytest.mark.timeout(60)
def test_os_exit_answers_the_request_and_a_fresh_worker_runs_the_next(kernel, kc):
    execute(kc, "lost = 1")
    first_worker = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]["worker_pid"]
    msg_id = kc.execute("import os; os._exit(3)")
    reply = get_reply(kc, msg_id, 20)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "WorkerDied"
    assert "exited with code 3" in reply["content"]["evalue"]
    msgs = collect_iopub(kc, msg_id, 20)
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert [e["ename"] for e in errors] == ["WorkerDied"]
    reply, msgs = execute(kc, "'lost' in dir()", timeout=30)
    assert reply["content"]["status"] == "ok"
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert results == ["False"]
    kernel.remember_children()
    info = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]
    assert info["worker_pid"] != first_worker
    assert info["generation"] == 2
    assert kernel.proc.poll() is None
