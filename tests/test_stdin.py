"""input() and getpass() as round trips over the stdin channel."""

from __future__ import annotations

from tests.helpers.kernel import collect_iopub, execute, get_reply


def stdout_text(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def test_input_round_trip(kc):
    msg_id = kc.execute("x = input('name: ')\nprint('got', x)", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    assert request["msg_type"] == "input_request"
    assert request["content"] == {"prompt": "name: ", "password": False}
    assert request["parent_header"]["msg_id"] == msg_id
    kc.input("value")  # jupyter_client's own reply (it carries no parent header)
    reply = get_reply(kc, msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(collect_iopub(kc, msg_id)) == "got value\n"


def test_getpass_round_trip(kc):
    code = "import getpass\npw = getpass.getpass('pw: ')\nprint(len(pw), pw[::-1])"
    msg_id = kc.execute(code, allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    assert request["content"] == {"prompt": "pw: ", "password": True}
    assert request["parent_header"]["msg_id"] == msg_id
    kc.input("secret")
    reply = get_reply(kc, msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(collect_iopub(kc, msg_id)) == "6 terces\n"


def test_input_reply_with_parent_header(kc):
    """A frontend that parents its input_reply to the input_request (JupyterLab does)."""
    msg_id = kc.execute("v = input('> ')\nv.upper()", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    assert request["content"] == {"prompt": "> ", "password": False}
    answer = kc.session.msg("input_reply", {"value": "abc"}, parent=request["header"])
    kc.stdin_channel.send(answer)
    reply = get_reply(kc, msg_id, timeout=10)
    assert reply["content"]["status"] == "ok"
    results = [m["content"]["data"] for m in collect_iopub(kc, msg_id)
               if m["msg_type"] == "execute_result"]
    assert results == [{"text/plain": "'ABC'"}]


def test_prompt_output_flushed_before_input_request(kc):
    msg_id = kc.execute("print('before')\nv = input()", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    # the print was published before the kernel asked for input
    seen = []
    while not any(m["msg_type"] == "stream" for m in seen):
        seen.append(kc.get_iopub_msg(timeout=10))
    assert stdout_text(seen) == "before\n"
    kc.stdin_channel.send(kc.session.msg("input_reply", {"value": ""}, parent=request["header"]))
    assert get_reply(kc, msg_id, timeout=10)["content"]["status"] == "ok"


def test_ctrl_d_raises_eof(kc):
    msg_id = kc.execute("input()", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=10)
    kc.stdin_channel.send(
        kc.session.msg("input_reply", {"value": "\x04"}, parent=request["header"])
    )
    reply = get_reply(kc, msg_id, timeout=10)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "EOFError"


def test_input_not_allowed(kc):
    reply, msgs = execute(kc, "input('x')", allow_stdin=False)
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "StdinNotImplementedError"
    assert content["evalue"] == (
        "raw_input was called, but this frontend does not support input requests."
    )
    errors = [m["content"] for m in msgs if m["msg_type"] == "error"]
    assert [e["ename"] for e in errors] == ["StdinNotImplementedError"]


def test_getpass_not_allowed(kc):
    reply, _ = execute(kc, "import getpass\ngetpass.getpass()", allow_stdin=False)
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "StdinNotImplementedError"
    assert content["evalue"] == (
        "getpass was called, but this frontend does not support input requests."
    )

