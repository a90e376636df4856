"""Output: streams from Python, C, threads and subprocesses; display messages; matplotlib."""

from __future__ import annotations

import base64
import os
import sys
import threading

from kernelsvc.worker.streams import OutStream
from tests.helpers.kernel import execute, get_reply
from tests.test_subshells import create_subshell, iopub_for, replies_for, send_execute


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


def test_fd_output_stays_in_order_with_prints_around_it(kc):
    # What streams.py keeps: fd output comes before any write that starts 20 µs after it, or
    # 20 µs after the stream's previous write (a subprocess takes far longer).
    code = (
        "import os, subprocess, sys, time\n"
        "print('a')\n"
        "os.system('echo b')\n"
        "print('c')\n"
        "subprocess.run(['echo', 'd'])\n"
        "print('e')\n"
        "_ = os.write(1, b'f\\n')\n"
        "t = time.monotonic()\n"
        "while time.monotonic() - t < 0.001:  # a C call that writes, then computes\n"
        "    pass\n"
        "print('g')\n"
        "print('x', file=sys.stderr)\n"
        "os.system('echo y >&2')\n"
        "print('z', file=sys.stderr)"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "a\nb\nc\nd\ne\nf\ng\n"
    assert text(msgs, "stderr") == "x\ny\nz\n"


def test_subprocesses_and_children_inside_a_print_loop_stay_in_order(kc):
    code = (
        "import multiprocessing, os, subprocess\n"
        "def child(i):\n"
        "    print(f'child {i}')\n"
        "for i in range(3000):\n"
        "    print(f'line {i}')\n"
        "    if i % 1000 == 0:\n"
        "        subprocess.run(['echo', f'sub {i}'])\n"
        "    elif i % 1000 == 1:\n"
        "        os.system(f'echo system {i}')\n"
        "    elif i % 1000 == 2:\n"
        "        p = multiprocessing.get_context('fork').Process(target=child, args=(i,))\n"
        "        p.start()\n"
        "        p.join()"
    )
    expected = []
    for i in range(3000):
        expected.append(f"line {i}\n")
        extra = {0: f"sub {i}\n", 1: f"system {i}\n", 2: f"child {i}\n"}.get(i % 1000)
        if extra:
            expected.append(extra)
    reply, msgs = execute(kc, code, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert text(msgs, "stdout") == "".join(expected)


def test_two_requests_printing_at_once_keep_their_own_output(kc):
    # A subshell and the main shell print at the same time: each message has one parent,
    # and each request gets all of its own lines, in order, and nothing else.
    execute(kc, "import threading\nready, go = threading.Event(), threading.Event()")
    subshell = create_subshell(kc)
    loop = "for i in range(20000):\n    print('{tag}', i)"
    main = send_execute(kc, "ready.set()\ngo.wait(30)\n" + loop.format(tag="main"))
    sub = send_execute(kc, "ready.wait(30)\ngo.set()\n" + loop.format(tag="sub"),
                       subshell_id=subshell)
    replies = replies_for(kc, [main, sub])
    assert all(r["content"]["status"] == "ok" for r in replies.values())
    outputs = iopub_for(kc, [main, sub])
    for msg_id, tag in ((main, "main"), (sub, "sub")):
        assert text(outputs[msg_id], "stdout") == "".join(f"{tag} {i}\n" for i in range(20000))


def test_output_appears_while_its_cell_still_runs(kc):
    # No flush, no full batch: the IO thread's timer sends the text while the cell waits.
    execute(kc, "import threading\ngo = threading.Event()")
    subshell = create_subshell(kc)
    for n in range(2):  # the timer is set again for the second batch
        waiting = send_execute(kc, f"print('early {n}')\ngo.wait(30)\ngo.clear()")
        while True:
            msg = kc.get_iopub_msg(timeout=10)
            if msg["parent_header"].get("msg_id") == waiting and msg["msg_type"] == "stream":
                assert msg["content"]["text"] == f"early {n}\n"
                break
        releaser = send_execute(kc, "go.set()", subshell_id=subshell)
        replies = replies_for(kc, [waiting, releaser])
        assert all(r["content"]["status"] == "ok" for r in replies.values())
        iopub_for(kc, [waiting, releaser])


class _Link:
    def call_later(self, delay, f):
        pass  # the test's sender thread stands in for the IO thread's timer


class _Request:
    def __init__(self, name: str) -> None:
        self.header = {"msg_id": name}


class _Kernel:
    """What OutStream needs of Kernel; publish records (parent, text)."""

    def __init__(self) -> None:
        self.session = None
        self.link = _Link()
        self.pid = os.getpid()
        self._parents: dict[int, _Request] = {}
        self._main_thread = threading.main_thread().ident
        self.stream_history = None
        self.sent: list[tuple[str, str]] = []

    def budget_for(self, parent):
        return None

    def publish(self, msg_type, content, parent=None):
        self.sent.append((parent.get("msg_id"), content["text"]))


def test_lock_free_writes_racing_sends_lose_nothing_and_keep_parents():
    """Writers append without a lock while another thread keeps sending (as the IO thread's
    timer does): every write arrives once, each thread's in order, under its own request."""
    kernel = _Kernel()
    kernel._parents[kernel._main_thread] = _Request("main")
    stream = OutStream(kernel, "stdout")
    lines = 5000
    done = threading.Event()
    start = threading.Barrier(5)  # all alive at once: no thread id is reused

    def writer(tag: str, own_request: bool) -> None:
        if own_request:  # a shell thread (a subshell) with its request; else the main's
            kernel._parents[threading.get_ident()] = _Request(tag)
        start.wait(30)
        for i in range(lines):
            stream.write(f"{tag}:{i}\n")

    def sender() -> None:
        while not done.is_set():
            stream.queue_pending()

    writers = [threading.Thread(target=writer, args=(f"s{n}", True)) for n in range(3)]
    writers += [threading.Thread(target=writer, args=(f"u{n}", False)) for n in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    try:
        sending = threading.Thread(target=sender)
        for thread in [*writers, sending]:
            thread.start()
        for thread in writers:
            thread.join(30)
        done.set()
        sending.join(30)
    finally:
        sys.setswitchinterval(interval)
    stream.queue_pending()
    by_parent: dict[str, list[str]] = {}
    for parent, sent in kernel.sent:
        by_parent.setdefault(parent, []).extend(sent.splitlines())
    expected_parent = {"s0": "s0", "s1": "s1", "s2": "s2", "u0": "main", "u1": "main"}
    for tag, parent in expected_parent.items():
        got = [line for line in by_parent.get(parent, []) if line.split(":")[0] == tag]
        assert got == [f"{tag}:{i}" for i in range(lines)], tag
    assert sum(len(v) for v in by_parent.values()) == lines * len(expected_parent)
    assert None not in by_parent  # nothing went out without its request


def test_text_added_to_a_batch_as_it_is_sent_is_sent_by_its_writer():
    """A writer can append to the batch a sender has just taken (where threads run truly
    at once, or switch between the two steps): it sees so and sends its text itself."""
    kernel = _Kernel()
    request = kernel._parents[kernel._main_thread] = _Request("main")
    stream = OutStream(kernel, "stdout")
    stream.write("first\n")

    class SentBeforeAppend(list):
        def append(self, item) -> None:
            stream.queue_pending()  # another thread sends the batch between check and append
            super().append(item)

    stream._batch = (request, SentBeforeAppend(stream._batch[1]))
    stream._look_after = float("inf")  # the lock-free path, as between two looks for fd output
    stream.write("second\n")
    stream.queue_pending()
    assert kernel.sent == [("main", "first\n"), ("main", "second\n")]


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
