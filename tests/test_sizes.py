"""Big messages: what is under the limit works, what is over it is refused, not buffered."""

from __future__ import annotations

import json

import pytest
import zmq

from tests.helpers.kernel import collect_iopub, execute, get_reply, start_kernel

pytestmark = pytest.mark.timeout(180)


def test_100_mb_code_and_100_mb_display_below_the_limit(kc):
    code = "len('" + "a" * (100 * 2**20) + "')"
    reply, msgs = execute(kc, code, timeout=120)
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["data"]["text/plain"] for m in msgs
            if m["msg_type"] == "execute_result"] == [str(100 * 2**20)]
    reply, msgs = execute(kc, "from IPython.display import display\n"
                              "display({'text/plain': 'b' * (100 * 2**20)}, raw=True)",
                          timeout=120)
    shown = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and len(shown[0]) == 100 * 2**20 and set(shown[0]) == {"b"}


def test_a_large_cell_that_kills_the_worker_is_still_numbered(kc):
    # Its execute_input is relayed without a copy; the supervisor still reads its number.
    msg_id = kc.execute("x = '" + "a" * 200_000 + "'\nimport os\nos._exit(1)")
    reply = get_reply(kc, msg_id, 30)
    inputs = [m["content"] for m in collect_iopub(kc, msg_id, 30)
              if m["msg_type"] == "execute_input"]
    assert reply["content"]["ename"] == "WorkerDied"
    assert len(inputs) == 1 and len(inputs[0]["code"]) > 200_000
    assert reply["content"]["execution_count"] == inputs[0]["execution_count"]


def test_a_message_over_the_limit_is_refused_with_an_error(tmp_path):
    kernel = start_kernel(tmp_path, "--max-message-size", "1M")
    try:
        kc = kernel.client()
        oversized = kc.session.msg("execute_request", {"code": "x = '" + "a" * 2**21 + "'"})
        info = json.loads(kernel.connection_file.read_text())
        sock = zmq.Context.instance().socket(zmq.DEALER)  # libzmq drops this peer
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
        sock.send_multipart(kc.session.serialize(oversized))
        assert not sock.poll(500), "an oversized message was answered"
        sock.close(linger=0)
        reply, msgs = execute(kc, "'x' in dir()")  # other clients are untouched
        assert [m["content"]["data"]["text/plain"] for m in msgs
                if m["msg_type"] == "execute_result"] == ["False"]
        content = {"code": "y = 1", "silent": False}
        msg = kc.session.msg("execute_request", content)
        # many frames, each under the cap, adding up to more than it: refused by the supervisor
        kc.session.send(kc.shell_channel.socket, msg, buffers=[b"z" * (600 * 2**10)] * 2)
        refused = get_reply(kc, msg["header"]["msg_id"], 20)
        assert refused["content"]["ename"] == "MessageTooLarge"
        assert "over the kernel's 1.0 MiB limit" in refused["content"]["evalue"]
        kernel.remember_children()
        assert kernel.proc.poll() is None
        kc.stop_channels()
    finally:
        kernel.stop()
