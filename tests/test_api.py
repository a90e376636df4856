"""The user-facing API of kernelsvc.worker, exercised from inside a running kernel."""

from __future__ import annotations

import ast
import importlib.util
import json

from tests.helpers.kernel import execute


def run(kc, code: str) -> tuple[dict, list[dict]]:
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply, msgs


def result(msgs: list[dict]):
    """The execute_result of a cell, as a Python literal."""
    results = [m["content"]["data"]["text/plain"] for m in msgs
               if m["msg_type"] == "execute_result"]
    assert len(results) == 1
    return ast.literal_eval(results[0])


def stdout(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def test_exports_import(kc):
    _, msgs = run(kc, (
        "from kernelsvc.worker import (OutStream, IOPubThread, Comm, CommManager,\n"
        "    get_connection_file, get_connection_info, write_connection_file,\n"
        "    connect_qtconsole)\n"
        "import kernelsvc.worker as w\n"
        "sorted(w.__all__), all(callable(x) for x in (OutStream, IOPubThread, Comm,\n"
        "    CommManager, get_connection_file, get_connection_info, write_connection_file,\n"
        "    connect_qtconsole))"
    ))
    names, all_callable = result(msgs)
    assert {"OutStream", "IOPubThread", "Comm", "CommManager", "get_connection_file",
            "get_connection_info", "write_connection_file", "connect_qtconsole"} <= set(names)
    assert all_callable is True
    reply, _ = execute(kc, "from kernelsvc.worker import NoSuchThing")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ImportError"


def test_sys_stdout_is_outstream(kc):
    _, msgs = run(kc, (
        "import sys\n"
        "from kernelsvc.worker import OutStream\n"
        "(isinstance(sys.stdout, OutStream), sys.stdout.name, isinstance(sys.stderr, OutStream),\n"
        " sys.stderr.name, sys.stdout.writable(), sys.stdout.readable(), sys.stdout.isatty(),\n"
        " sys.stdout.encoding, sys.stdout.fileno(), sys.stderr.fileno())"
    ))
    assert result(msgs) == (True, "stdout", True, "stderr", True, False, False, "utf-8", 1, 2)


def test_write_writelines_flush(kc):
    reply, msgs = run(kc, (
        "import sys\n"
        "n = sys.stdout.write('abc')\n"
        "sys.stdout.writelines(['d\\n', 'e\\n'])\n"
        "sys.stdout.flush()\n"
        "sys.stdout.write('')\n"
        "sys.stdout.write('tail')\n"
        "n"
    ))
    assert stdout(msgs) == "abcd\ne\ntail"
    assert result(msgs) == 3
    streams = [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"]
    # flush() sent what was written before it as one message of its own
    assert streams[0] == "abcd\ne\n"
    error, _ = execute(kc, "import sys\nsys.stdout.write(b'bytes')")
    assert error["content"]["ename"] == "TypeError"
    assert error["content"]["evalue"] == "write() argument must be str, not bytes"


def test_close_on_a_fresh_outstream(kc):
    reply, msgs = run(kc, (
        "import sys\n"
        "from kernelsvc.worker import OutStream\n"
        "s = OutStream(sys.stdout.kernel, 'stdout')\n"
        "s.write('pending')\n"
        "before = s.closed\n"
        "s.close()\n"
        "s.close()\n"
        "try:\n"
        "    s.write('more')\n"
        "    err = None\n"
        "except ValueError as e:\n"
        "    err = str(e)\n"
        "before, s.closed, err, sys.stdout.closed"
    ))
    assert stdout(msgs) == "pending"
    assert result(msgs) == (False, True, "I/O operation on closed file", False)
    # sys.stdout still works
    _, msgs = run(kc, "print('still here')")
    assert stdout(msgs) == "still here\n"


def test_iopub_thread_schedule_and_flush(kc):
    _, msgs = run(kc, (
        "import sys, threading\n"
        "from kernelsvc.worker import IOPubThread\n"
        "pt = sys.stdout.pub_thread\n"
        "done = threading.Event()\n"
        "where = []\n"
        "def f(x, y=0):\n"
        "    where.append((threading.current_thread().name, x + y))\n"
        "    done.set()\n"
        "pt.schedule(f, 1, y=2)\n"
        "(isinstance(pt, IOPubThread), done.wait(10), where, pt.flush(),\n"
        " threading.current_thread() is not pt.thread)"
    ))
    assert result(msgs) == (True, True, [("kernelsvc-io", 3)], True, True)


def test_get_connection_info_is_public_file(kc, kernel):
    on_disk = json.loads(kernel.connection_file.read_text())
    _, msgs = run(kc, (
        "import json\n"
        "from kernelsvc.worker import get_connection_info, get_connection_file\n"
        "info = get_connection_info()\n"
        "print(json.dumps({'unpacked': get_connection_info(unpack=True),\n"
        "                  'text': str(info), 'ip': info['ip'],\n"
        "                  'file': get_connection_file()}))"
    ))
    seen = json.loads(stdout(msgs))
    assert seen["unpacked"] == on_disk
    assert json.loads(seen["text"]) == on_disk  # prints as ipykernel's JSON text
    assert seen["ip"] == on_disk["ip"]  # and indexes as the seed documents show
    assert seen["file"] == str(kernel.connection_file.resolve())
    # the ports and key the test client used
    assert seen["unpacked"]["shell_port"] == kc.shell_port
    assert seen["unpacked"]["iopub_port"] == kc.iopub_port
    assert seen["unpacked"]["stdin_port"] == kc.stdin_port
    assert seen["unpacked"]["control_port"] == kc.control_port
    assert seen["unpacked"]["hb_port"] == kc.hb_port
    assert seen["unpacked"]["key"] == kc.session.key.decode()
    assert seen["unpacked"]["signature_scheme"] == "hmac-sha256"


def test_connect_info_magic(kc, kernel):
    _, msgs = run(kc, "%connect_info")
    text = stdout(msgs)
    json_part, sep, rest = text.partition("\n\nPaste the above JSON into a file")
    assert sep
    info = json.loads(json_part)
    assert info["shell_port"] == kc.shell_port
    assert info["key"] == kc.session.key.decode()
    assert info == json.loads(kernel.connection_file.read_text())
    assert f"$> jupyter <app> --existing {kernel.connection_file.name}\n" in rest
    assert rest.rstrip().endswith("if this is the most recent Jupyter kernel you have started.")


def test_connect_qtconsole_without_qtconsole(kc):
    assert importlib.util.find_spec("qtconsole") is None  # same interpreter as the kernel
    reply, msgs = execute(kc, "from kernelsvc.worker import connect_qtconsole\nconnect_qtconsole()")
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "ImportError"
    assert content["evalue"] == "connect_qtconsole needs qtconsole: pip install qtconsole"


def test_write_connection_file_helper(kc, tmp_path):
    target = tmp_path / "written.json"
    _, msgs = run(kc, (
        "from kernelsvc.worker import write_connection_file\n"
        f"fname, cfg = write_connection_file({str(target)!r}, ip='127.0.0.1', shell_port=5555,\n"
        "                                    key=b'k3y')\n"
        "fname, cfg['shell_port']"
    ))
    assert result(msgs) == (str(target), 5555)
    written = json.loads(target.read_text())
    assert written["shell_port"] == 5555
    assert written["key"] == "k3y"
    assert written["ip"] == "127.0.0.1"


def test_comm_manager_api(kc):
    _, msgs = run(kc, (
        "import comm\n"
        "from kernelsvc.worker import Comm, CommManager\n"
        "m = CommManager()\n"
        "def f(c, msg):\n"
        "    pass\n"
        "m.register_target('t1', f)\n"
        "after_register = m.targets == {'t1': f}\n"
        "removed = m.unregister_target('t1', f) is f\n"
        "after_unregister = m.targets\n"
        "c = Comm(target_name='t2', primary=False)\n"
        "cid = m.register_comm(c)\n"
        "lookup = m.get_comm(cid) is c\n"
        "listed = m.comms == {cid: c}\n"
        "missing = m.get_comm('missing')\n"
        "m.unregister_comm(c)\n"
        "(after_register, removed, after_unregister, lookup, listed, missing, m.comms,\n"
        " cid == c.comm_id, isinstance(comm.get_comm_manager(), CommManager),\n"
        " comm.get_comm_manager() is comm.get_comm_manager(),\n"
        " isinstance(comm.create_comm(target_name='x', primary=False), Comm))"
    ))
    assert result(msgs) == (True, True, {}, True, True, None, {}, True, True, True, True)


def test_kernel_comm_manager_register_target_by_name(kc):
    _, msgs = run(kc, (
        "import comm\n"
        "m = comm.get_comm_manager()\n"
        "m.register_target('by-name', 'json.dumps')\n"
        "import json\n"
        "(m.targets['by-name'] is json.dumps, m.unregister_target('by-name', None) is json.dumps,\n"
        " 'by-name' in m.targets)"
    ))
    assert result(msgs) == (True, True, False)
