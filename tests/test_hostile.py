"""Hostile input, load and floods: nothing crashes, nothing is lost, nobody unauthorised
gets in. Every loop is bounded in count and time, and talks only to 127.0.0.1."""

from __future__ import annotations

import json
import random
import threading

import psutil
import pytest
import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.session import Session

from tests.helpers.heartbeat import HeartbeatMonitor
from tests.helpers.kernel import collect_iopub, execute, get_reply

pytestmark = pytest.mark.timeout(120)


def raw_socket(kernel, channel: str, kind=zmq.DEALER) -> zmq.Socket:
    info = json.loads(kernel.connection_file.read_text())
    sock = zmq.Context.instance().socket(kind)
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{info[f'{channel}_port']}")
    return sock


def marker(kc) -> str:
    _, msgs = execute(kc, "print(globals().get('marker', 'untouched'))")
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream").strip()


@pytest.mark.parametrize("channel", ["shell", "control", "stdin"])
def test_forged_unsigned_replayed_on_every_socket(kernel, kc, channel):
    info = json.loads(kernel.connection_file.read_text())
    good = Session(key=info["key"].encode())
    forger = Session(key=b"wrong key")
    code = {"code": "marker = 'hacked'", "silent": False}
    kinds = {"shell": "execute_request", "control": "shutdown_request", "stdin": "input_reply"}
    sock = raw_socket(kernel, channel)
    try:
        sock.send_multipart(forger.serialize(forger.msg(kinds[channel], code)))
        unsigned = Session(key=b"")
        sock.send_multipart(unsigned.serialize(unsigned.msg(kinds[channel], code)))
        valid = good.serialize(good.msg("kernel_info_request", {}))
        if channel != "stdin":
            sock.send_multipart(valid)
            assert sock.poll(5000), "the valid request must be answered"
            reply = good.deserialize(good.feed_identities(sock.recv_multipart())[1])
            assert reply["msg_type"] == "kernel_info_reply"
            sock.send_multipart(valid)  # the same signature again: a replay
        assert not sock.poll(300), "a forged, unsigned or replayed message was answered"
    finally:
        sock.close(linger=0)
    assert marker(kc) == "untouched"
    assert kernel.proc.poll() is None


def test_forged_input_reply_does_not_answer_input(kernel, kc):
    msg_id = kc.execute("answer = input('? ')", allow_stdin=True)
    kc.get_stdin_msg(timeout=10)
    sock = raw_socket(kernel, "stdin")
    sock.identity = kc.session.bsession  # even with the client's routing identity
    sock.connect(sock.LAST_ENDPOINT.decode())
    forger = Session(key=b"wrong key")
    sock.send_multipart(forger.serialize(forger.msg("input_reply", {"value": "forged"})))
    sock.close(linger=0)
    kc.input("genuine")
    assert get_reply(kc, msg_id, 10)["content"]["status"] == "ok"
    _, msgs = execute(kc, "answer")
    assert [m["content"]["data"]["text/plain"] for m in msgs
            if m["msg_type"] == "execute_result"] == ["'genuine'"]


def test_bounded_fuzz_leaves_the_kernel_correct(kernel, kc):
    """Random and mutated multipart messages on every socket, heartbeat included."""
    info = json.loads(kernel.connection_file.read_text())
    good = Session(key=info["key"].encode())
    rng = random.Random(1234)
    template = good.serialize(good.msg("execute_request", {"code": "marker = 'fuzzed'"}))
    socks = {ch: raw_socket(kernel, ch) for ch in ("shell", "control", "stdin")}
    socks["hb"] = raw_socket(kernel, "hb", zmq.DEALER)
    stuck: dict[str, int] = {}
    monitor = HeartbeatMonitor(kernel.connection_file).__enter__()
    try:
        for i in range(5000):
            frames = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
                      for _ in range(rng.randint(1, 8))]
            if i % 3 == 0:  # mutate a well-formed message instead
                frames = list(template)
                spot = rng.randrange(len(frames))
                blob = bytearray(frames[spot] or b"x")
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
                frames[spot] = bytes(blob)
                if i % 2:
                    frames.insert(0, b"<IDS|MSG>")
            name = rng.choice(list(socks))
            try:
                socks[name].send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                stuck[name] = stuck.get(name, 0) + 1
    finally:
        for sock in socks.values():
            sock.close(linger=0)
        monitor.__exit__(None, None, None)
    print("sends that found a full queue:", stuck)
    assert monitor.missed == 0 and monitor.answered > 0  # junk on hb stalls nobody else
    assert marker(kc) == "untouched"
    reply, msgs = execute(kc, "sum(range(10))")
    assert [m["content"]["data"]["text/plain"] for m in msgs
            if m["msg_type"] == "execute_result"] == ["45"]
    assert kernel.proc.poll() is None
    assert "message_handling_failed" not in kernel.stderr()


def test_twenty_clients_each_get_their_own_replies_and_outputs(kernel, kc):
    clients = []
    try:
        for _ in range(20):
            client = BlockingKernelClient()
            client.load_connection_file(str(kernel.connection_file))
            client.start_channels()
            clients.append(client)
        # Two clients read IOPub as real frontends do, all along (a subscriber that stops
        # reading is dropped past its high-water mark: that is the slow-subscriber case).
        results: list[dict[str, str]] = [{}, {}]
        readers = [threading.Thread(target=read_results, args=(clients[n], results[n], 2000),
                                    daemon=True) for n in range(2)]
        for reader in readers:
            reader.start()
        sent: dict[int, list[str]] = {}
        for n, client in enumerate(clients):
            sent[n] = [client.execute(f"{n} * 1000 + {i}") for i in range(100)]
        for n, client in enumerate(clients):
            replies = [client.get_shell_msg(timeout=60) for _ in range(100)]
            assert [r["parent_header"]["msg_id"] for r in replies] == sent[n]
            assert all(r["content"]["status"] == "ok" for r in replies)
            assert [r["content"]["execution_count"] for r in replies] == sorted(
                r["content"]["execution_count"] for r in replies)
        for reader in readers:
            reader.join(60)
        for seen in results:
            for m, ids in sent.items():
                assert [seen.get(i) for i in ids] == [str(m * 1000 + i) for i in range(100)]
    finally:
        for client in clients:
            client.stop_channels()


def read_results(client, results: dict[str, str], count: int) -> None:
    """execute_result texts by parent msg_id, until ``count`` arrived (or 60 s of silence)."""
    while len(results) < count:
        try:
            msg = client.get_iopub_msg(timeout=60)
        except Exception:
            return
        if msg["msg_type"] == "execute_result":
            results[msg["parent_header"]["msg_id"]] = msg["content"]["data"]["text/plain"]


def test_output_flood_keeps_control_and_heartbeat_and_stops_on_interrupt(kernel, kc):
    kernel.remember_children()
    slow = raw_socket(kernel, "iopub", zmq.SUB)  # a subscriber that never reads
    slow.setsockopt(zmq.SUBSCRIBE, b"")
    slow.rcvhwm = 10
    try:
        with HeartbeatMonitor(kernel.connection_file) as hb:
            msg_id = kc.execute("while True:\n    print('x' * 100)")
            streamed = 0
            while streamed < 1_000_000:  # a megabyte of output has flowed
                msg = kc.get_iopub_msg(timeout=10)
                if msg["msg_type"] == "stream":
                    streamed += len(msg["content"]["text"])
            info = kc.kernel_info(reply=True, timeout=10)
            assert info["content"]["status"] == "ok"
            supervisor_rss = psutil.Process(kernel.pid).memory_info().rss
            request = kc.session.msg("interrupt_request", {})
            kc.control_channel.send(request)
            assert get_reply(kc, request["header"]["msg_id"], 10, "control")
            reply = get_reply(kc, msg_id, 20)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert hb.missed == 0
        assert supervisor_rss < 300 * 2**20, "the supervisor buffered the flood"
        collect_iopub(kc, msg_id, 30)
        reply, _ = execute(kc, "1 + 1")
        assert reply["content"]["status"] == "ok"
    finally:
        slow.close(linger=0)


def test_many_threads_printing_at_once(kc):
    # one write per line: print() writes the text and the newline separately, so lines
    # from several threads may share a line (as in any Python), but no byte may be lost
    code = ("import sys, threading\n"
            "def spam(n):\n"
            "    for i in range(2000):\n"
            "        sys.stdout.write(f'{n}:{i}\\n')\n"
            "ts = [threading.Thread(target=spam, args=(n,)) for n in range(8)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n")
    reply, msgs = execute(kc, code, timeout=60)
    assert reply["content"]["status"] == "ok"
    lines = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream").split()
    assert len(lines) == 16000 and len(set(lines)) == 16000  # nothing lost, nothing doubled
    assert threading.active_count() >= 1


def test_worker_holds_no_public_socket_and_the_private_endpoint_is_0700(kernel, kc):
    import os
    import stat

    worker = kc.kernel_info(reply=True, timeout=10)["content"]["kernelsvc"]["worker_pid"]
    kernel.remember_children()
    info = json.loads(kernel.connection_file.read_text())
    public = {info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port",
                                "hb_port")}
    worker_ports = {c.laddr.port for c in psutil.Process(worker).net_connections(kind="inet")}
    assert not worker_ports & public
    supervisor = psutil.Process(kernel.pid)
    listening = {c.laddr.port for c in supervisor.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    assert public <= listening and all(
        c.laddr.ip == "127.0.0.1" for c in supervisor.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN)
    unix = [c.laddr for c in supervisor.net_connections(kind="unix") if c.laddr]
    endpoint_dirs = {os.path.dirname(path) for path in unix if path.endswith("/worker")}
    assert len(endpoint_dirs) == 1
    assert stat.S_IMODE(os.stat(endpoint_dirs.pop()).st_mode) == 0o700


def test_max_output_bytes_keeps_head_and_tail(tmp_path):
    from tests.helpers.kernel import start_kernel

    kernel = start_kernel(tmp_path, "--max-output-bytes", "2000")
    try:
        kc = kernel.client()
        kernel.remember_children()
        reply, msgs = execute(kc, "for i in range(1000):\n    print(f'line {i:04d}')")
        assert reply["content"]["status"] == "ok"
        text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
        assert text.startswith("line 0000\nline 0001\n")
        assert text.endswith("line 0998\nline 0999\n")
        assert "characters of output omitted here (--max-output-bytes 2000)" in text
        assert len(text) < 2200
        reply, msgs = execute(kc, "print('small')")  # the next request has a fresh budget
        assert [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"] == ["small\n"]
        reply, msgs = execute(kc, "for i in range(1000):\n    print(f'line {i:04d}')\n1 / 0")
        kinds = [m["msg_type"] for m in msgs if m["msg_type"] in ("stream", "error")]
        assert kinds[-1] == "error"  # the held-back tail comes before the traceback
        assert "line 0999" in "".join(m["content"]["text"] for m in msgs
                                      if m["msg_type"] == "stream")
        kc.stop_channels()
    finally:
        kernel.stop()


def test_output_after_its_cell_ended_is_budgeted_too(tmp_path):
    """A thread a cell started keeps printing after the cell: bounded all the same."""
    from tests.helpers.kernel import start_kernel

    kernel = start_kernel(tmp_path, "--max-output-bytes", "2000")
    try:
        kc = kernel.client()
        kernel.remember_children()
        cells = ["import threading\ngo, done = threading.Event(), threading.Event()\n"
                 "def spam():\n    go.wait()\n"
                 "    for _ in range(2000): print('y' * 99)\n    done.set()\n"
                 "t = threading.Thread(target=spam)\nt.start()",
                 "go.set()",  # ends at once: the thread prints after it
                 "done.wait(30)",
                 "t.join(10)"]  # its end publishes what late output held back
        last = None
        for code in cells:
            last = kc.execute(code)
            assert get_reply(kc, last, 40)["content"]["status"] == "ok"
        streams = []
        while True:  # everything published, whatever its parent, up to the last cell's idle
            msg = kc.get_iopub_msg(timeout=10)
            if msg["msg_type"] == "stream":
                streams.append(msg["content"]["text"])
            if msg["parent_header"].get("msg_id") == last and msg["msg_type"] == "status" \
                    and msg["content"]["execution_state"] == "idle":
                break
        text = "".join(streams)
        assert text.count("y") < 3 * 2000, "200 kB were printed; the budget must bound it"
        assert "characters of output omitted here" in text
        kc.stop_channels()
    finally:
        kernel.stop()


@pytest.mark.parametrize("content", [b"not json", b"[1, 2, 3]"])
def test_known_request_with_bad_content_gets_an_error_reply(kernel, kc, content):
    info = json.loads(kernel.connection_file.read_text())
    session = Session(key=info["key"].encode())
    msg = session.msg("execute_request", {})
    parts = [session.pack(msg["header"]), b"{}", b"{}", content]
    frames = [b"<IDS|MSG>", session.sign(parts), *parts]
    sock = raw_socket(kernel, "shell")
    try:
        sock.send_multipart(frames)
        assert sock.poll(10_000)
        while True:
            reply = session.deserialize(session.feed_identities(sock.recv_multipart())[1])
            if reply["msg_type"] == "execute_reply":
                break
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "BadRequest"
    finally:
        sock.close(linger=0)
    assert marker(kc) == "untouched"
