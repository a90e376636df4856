"""Output: streams from Python, C, threads and subprocesses; display messages; matplotlib."""

from __future__ import annotations

import base64

from tests.helpers.kernel import execute, get_reply


def streams(msgs: list[dict], name: str | None = None) -> list[dict]:
    return [m["content"] for m in msgs
            if m["msg_type"] == "stream" and (name is None or m["content"]["name"] == name)]


def text(msgs: list[dict], name: str) -> str:
    return "".join(s["text"] for s in streams(msgs, name))


def of_type(msgs: list[dict], msg_type: str) -> list[dict]:
    return [m["content"] for m in msgs if m["msg_type"] == msg_type]


def test_stdout_and_stderr_streams(kc):
    reply, msgs = execute(kc, "import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert reply["content"]["status"] == "ok"
    assert streams(msgs, "stdout") == [{"name": "stdout", "text": "out\n"}]
    assert streams(msgs, "stderr") == [{"name": "stderr", "text": "err\n"}]
    for m in msgs:
        if m["msg_type"] == "stream":
            assert m["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]


def test_many_prints_are_batched_but_complete(kc):
    reply, msgs = execute(kc, "for i in range(2000):\n    print(i)")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "".join(f"{i}\n" for i in range(2000))
    assert 1 <= len(streams(msgs, "stdout")) <= 10


def test_large_output_is_complete(kc):
    reply, msgs = execute(kc, "print('x' * 300000)")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "x" * 300000 + "\n"


def test_fd_level_write(kc):
    reply, msgs = execute(kc, "import os\n_ = os.write(1, b'fd\\n')\n_ = os.write(2, b'fd2\\n')")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "fd\n"
    assert text(msgs, "stderr") == "fd2\n"


def test_print_from_thread(kc):
    code = (
        "import threading\n"
        "t = threading.Thread(target=lambda: print('from thread'))\n"
        "t.start()\n"
        "t.join()"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "from thread\n"


def test_shell_escape_subprocess_output(kc):
    reply, msgs = execute(kc, "!echo hi")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout").replace("\r\n", "\n") == "hi\n"


def test_os_system_subprocess_output(kc):
    reply, msgs = execute(kc, "import os\nrc = os.system('echo sys')\nrc")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "sys\n"
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "0"}


def test_subprocess_stderr(kc):
    reply, msgs = execute(kc, "import os\n_ = os.system('echo oops >&2')")
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stderr") == "oops\n"


def test_output_order_and_everything_before_idle(kc):
    code = (
        "import sys\n"
        "print('first')\n"
        "sys.stdout.flush()\n"
        "print('second', file=sys.stderr)\n"
        "sys.stderr.flush()\n"
        "for i in range(50):\n"
        "    print('line', i)\n"
        "import os\n"
        "_ = os.system('echo last')"
    )
    msg_id = kc.execute(code)
    marker = kc.execute("'marker'")
    # Read IOPub until the second request is idle; nothing of the first may follow its idle.
    seen = []
    while True:
        msg = kc.get_iopub_msg(timeout=20)
        seen.append(msg)
        if (msg["parent_header"].get("msg_id") == marker and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"):
            break
    first = [m for m in seen if m["parent_header"].get("msg_id") == msg_id]
    idle_at = [i for i, m in enumerate(first)
               if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"]
    assert len(idle_at) == 1
    assert idle_at[0] == len(first) - 1, [m["msg_type"] for m in first]
    kinds = [(m["content"]["name"], m["content"]["text"]) for m in first
             if m["msg_type"] == "stream"]
    assert kinds[0] == ("stdout", "first\n")
    assert kinds[1] == ("stderr", "second\n")
    rest = "".join(t for name, t in kinds[2:] if name == "stdout")
    assert rest == "".join(f"line {i}\n" for i in range(50)) + "last\n"
    assert [name for name, _ in kinds[2:]] == ["stdout"] * len(kinds[2:])
    assert get_reply(kc, msg_id)["content"]["status"] == "ok"
    assert get_reply(kc, marker)["content"]["status"] == "ok"


def test_display_data(kc):
    reply, msgs = execute(kc, "from IPython.display import display\ndisplay('hello')")
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "display_data") == [
        {"data": {"text/plain": "'hello'"}, "metadata": {}, "transient": {}}
    ]


def test_display_raw_mime_bundle(kc):
    code = (
        "from IPython.display import display\n"
        "display({'text/plain': 'plain', 'text/html': '<b>b</b>'}, raw=True)"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "display_data") == [
        {"data": {"text/plain": "plain", "text/html": "<b>b</b>"}, "metadata": {},
         "transient": {}}
    ]


def test_update_display_data_and_clear_output(kc):
    code = (
        "from IPython.display import display, clear_output\n"
        "h = display('a', display_id='d1')\n"
        "h.update('b')\n"
        "clear_output(wait=True)"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    outputs = [(m["msg_type"], m["content"]) for m in msgs
               if m["msg_type"] in ("display_data", "update_display_data", "clear_output")]
    assert outputs == [
        ("display_data",
         {"data": {"text/plain": "'a'"}, "metadata": {}, "transient": {"display_id": "d1"}}),
        ("update_display_data",
         {"data": {"text/plain": "'b'"}, "metadata": {}, "transient": {"display_id": "d1"}}),
        ("clear_output", {"wait": True}),
    ]


def test_stream_flushed_before_display(kc):
    code = (
        "from IPython.display import display\n"
        "print('before')\n"
        "display('shown')\n"
        "print('after')"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    seq = [(m["msg_type"], m["content"].get("text") or m["content"].get("data"))
           for m in msgs if m["msg_type"] in ("stream", "display_data")]
    assert seq == [
        ("stream", "before\n"),
        ("display_data", {"text/plain": "'shown'"}),
        ("stream", "after\n"),
    ]


def test_matplotlib_inline_figure(kc):
    code = (
        "%matplotlib inline\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3])\n"
        "plt.show()"
    )
    reply, msgs = execute(kc, code, timeout=60)
    assert reply["content"]["status"] == "ok"
    displays = of_type(msgs, "display_data")
    assert len(displays) == 1
    data = displays[0]["data"]
    assert set(data) == {"image/png", "text/plain"}
    assert data["text/plain"] == "<Figure size 640x480 with 1 Axes>"
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure was flushed and closed: nothing is left to show
    reply, msgs = execute(kc, "len(plt.get_fignums())")
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "0"}
