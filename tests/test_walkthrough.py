"""The seed walkthrough, reproduced against a real `kernelsvc start` process."""

from __future__ import annotations

from tests.helpers.kernel import collect_iopub, get_reply


def test_walkthrough_message_order(kc):
    msg_id = kc.execute("x = 42\ny = x * 2\ny")
    msgs = collect_iopub(kc, msg_id)
    assert [m["msg_type"] for m in msgs] == ["status", "execute_input", "execute_result", "status"]
    assert msgs[0]["content"] == {"execution_state": "busy"}
    assert msgs[1]["content"] == {"code": "x = 42\ny = x * 2\ny", "execution_count": 1}
    assert msgs[2]["content"]["data"] == {"text/plain": "84"}
    assert msgs[2]["content"]["execution_count"] == 1
    assert msgs[3]["content"] == {"execution_state": "idle"}
    assert all(m["parent_header"]["msg_id"] == msg_id for m in msgs)
    reply = get_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1


def test_print_is_a_stdout_stream(kc):
    msg_id = kc.execute("print('hello')")
    msgs = collect_iopub(kc, msg_id)
    streams = [m["content"] for m in msgs if m["msg_type"] == "stream"]
    assert streams == [{"name": "stdout", "text": "hello\n"}]
