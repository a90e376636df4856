"""Comms: opened by the kernel, opened by the frontend, and listed by comm_info."""

from __future__ import annotations

import uuid

from tests.helpers.kernel import collect_iopub, execute, get_reply

COMM_TYPES = ("comm_open", "comm_msg", "comm_close")

ECHO_TARGET = (
    "import comm\n"
    "def f(c, msg):\n"
    "    c.send({'opened': msg['content']['data']})\n"
    "    c.on_msg(lambda m: c.send({'echo': m['content']['data']}))\n"
    "comm.get_comm_manager().register_target('echo', f)"
)


def comm_msgs(msgs: list[dict]) -> list[tuple[str, dict]]:
    return [(m["msg_type"], m["content"]) for m in msgs if m["msg_type"] in COMM_TYPES]


def send_shell(kc, msg_type: str, content: dict) -> str:
    msg = kc.session.msg(msg_type, content)
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def comm_info(kc, target_name: str | None = None) -> dict:
    msg_id = kc.comm_info(target_name=target_name)
    reply = get_reply(kc, msg_id)
    collect_iopub(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    return reply["content"]["comms"]


def test_kernel_opened_comm(kc):
    code = (
        "from comm import create_comm\n"
        "c = create_comm(target_name='t', data={'a': 1})\n"
        "c.send({'b': 2})\n"
        "c.close()\n"
        "c.comm_id"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    result = [m["content"] for m in msgs if m["msg_type"] == "execute_result"][0]
    comm_id = result["data"]["text/plain"].strip("'")
    assert len(comm_id) == 32
    assert comm_msgs(msgs) == [
        ("comm_open", {"data": {"a": 1}, "comm_id": comm_id, "target_name": "t",
                       "target_module": None}),
        ("comm_msg", {"data": {"b": 2}, "comm_id": comm_id}),
        ("comm_close", {"data": {}, "comm_id": comm_id}),
    ]
    for m in msgs:
        if m["msg_type"] in COMM_TYPES:
            assert m["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]
            assert m["metadata"] == {}
    # closed comms are no longer listed
    assert comm_info(kc) == {}


def test_kernel_comm_with_metadata_and_close_data(kc):
    code = (
        "from comm import create_comm\n"
        "c = create_comm(target_name='m', data={}, metadata={'k': 'v'})\n"
        "c.close(data={'bye': True})"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    opens = [m for m in msgs if m["msg_type"] == "comm_open"]
    assert len(opens) == 1
    assert opens[0]["metadata"] == {"k": "v"}
    closes = [m["content"] for m in msgs if m["msg_type"] == "comm_close"]
    assert len(closes) == 1
    assert closes[0]["data"] == {"bye": True}


def test_frontend_opened_comm_echo(kc):
    reply, _ = execute(kc, ECHO_TARGET)
    assert reply["content"]["status"] == "ok"
    comm_id = uuid.uuid4().hex

    open_id = send_shell(kc, "comm_open",
                         {"comm_id": comm_id, "target_name": "echo", "data": {"hello": 1}})
    opened = collect_iopub(kc, open_id)
    assert [m["msg_type"] for m in opened] == ["status", "comm_msg", "status"]
    assert comm_msgs(opened) == [("comm_msg", {"data": {"opened": {"hello": 1}},
                                               "comm_id": comm_id})]
    assert comm_info(kc) == {comm_id: {"target_name": "echo"}}

    msg_id = send_shell(kc, "comm_msg", {"comm_id": comm_id, "data": {"ping": [1, 2]}})
    echoed = collect_iopub(kc, msg_id)
    assert comm_msgs(echoed) == [("comm_msg", {"data": {"echo": {"ping": [1, 2]}},
                                               "comm_id": comm_id})]
    assert all(m["parent_header"]["msg_id"] == msg_id for m in echoed)

    close_id = send_shell(kc, "comm_close", {"comm_id": comm_id, "data": {}})
    closed = collect_iopub(kc, close_id)
    assert comm_msgs(closed) == []
    assert comm_info(kc) == {}
    # a comm_msg to the closed comm is ignored, and the kernel still answers
    late_id = send_shell(kc, "comm_msg", {"comm_id": comm_id, "data": {"late": 1}})
    assert comm_msgs(collect_iopub(kc, late_id)) == []
    reply, msgs = execute(kc, "1 + 1")
    assert [m["content"]["data"] for m in msgs if m["msg_type"] == "execute_result"] == [
        {"text/plain": "2"}]


def test_frontend_comm_messages_get_no_shell_reply(kc):
    execute(kc, ECHO_TARGET)
    comm_id = uuid.uuid4().hex
    collect_iopub(kc, send_shell(kc, "comm_open",
                                 {"comm_id": comm_id, "target_name": "echo", "data": {}}))
    collect_iopub(kc, send_shell(kc, "comm_msg", {"comm_id": comm_id, "data": {}}))
    # the next shell message on the channel is the kernel_info_reply, not a comm reply
    info_id = kc.kernel_info()
    reply = kc.get_shell_msg(timeout=10)
    assert reply["msg_type"] == "kernel_info_reply"
    assert reply["parent_header"]["msg_id"] == info_id


def test_comm_open_unknown_target_is_closed(kc):
    comm_id = uuid.uuid4().hex
    open_id = send_shell(kc, "comm_open",
                         {"comm_id": comm_id, "target_name": "no-such-target", "data": {}})
    msgs = collect_iopub(kc, open_id)
    assert comm_msgs(msgs) == [("comm_close", {"data": {}, "comm_id": comm_id})]
    assert comm_info(kc) == {}


def test_comm_info_target_filter(kc):
    execute(kc, ECHO_TARGET)
    frontend_id = uuid.uuid4().hex
    collect_iopub(kc, send_shell(kc, "comm_open",
                                 {"comm_id": frontend_id, "target_name": "echo", "data": {}}))
    reply, msgs = execute(kc, "from comm import create_comm\nk = create_comm(target_name='kt')\n"
                              "k.comm_id")
    kernel_id = [m["content"]["data"]["text/plain"] for m in msgs
                 if m["msg_type"] == "execute_result"][0].strip("'")
    assert comm_info(kc) == {frontend_id: {"target_name": "echo"},
                             kernel_id: {"target_name": "kt"}}
    assert comm_info(kc, "echo") == {frontend_id: {"target_name": "echo"}}
    assert comm_info(kc, "kt") == {kernel_id: {"target_name": "kt"}}
    assert comm_info(kc, "other") == {}


def test_library_log_records_stay_out_of_the_notebook(kernel, kc):
    msg = kc.session.msg("comm_open", {"comm_id": "c-unknown", "target_name": "no-such-target",
                                       "data": {}})
    kc.shell_channel.send(msg)
    msgs = collect_iopub(kc, msg["header"]["msg_id"])
    streams = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"]
    assert streams == []  # the comm package's "No such comm target" goes to the log instead
    assert "No such comm target" in kernel.stderr()
