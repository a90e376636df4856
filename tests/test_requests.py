"""complete / inspect / is_complete / history / comm_info requests."""

from __future__ import annotations

import ast
import uuid

from tests.helpers.kernel import collect_iopub, execute, get_reply

DEFINE = (
    "my_variable_abc = 1\n"
    "def myfunc(a):\n"
    "    '''Doc here.'''\n"
    "    return a + 1"
)


def request(kc, msg_id: str) -> dict:
    reply = get_reply(kc, msg_id)
    msgs = collect_iopub(kc, msg_id)
    assert [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"] == [
        "busy", "idle"]
    return reply


def test_complete_user_variable(kc):
    execute(kc, DEFINE)
    reply = request(kc, kc.complete("my_vari", 7))
    assert reply["msg_type"] == "complete_reply"
    c = reply["content"]
    assert c["status"] == "ok"
    assert c["matches"] == ["my_variable_abc"]
    assert (c["cursor_start"], c["cursor_end"]) == (0, 7)
    assert c["metadata"] == {"_jupyter_types_experimental": [
        {"start": 0, "end": 7, "text": "my_variable_abc", "type": "instance", "signature": ""}
    ]}


def test_complete_function_has_signature(kc):
    execute(kc, DEFINE)
    c = request(kc, kc.complete("x = myf", 7))["content"]
    assert c["matches"] == ["myfunc"]
    assert (c["cursor_start"], c["cursor_end"]) == (4, 7)
    assert c["metadata"]["_jupyter_types_experimental"] == [
        {"start": 4, "end": 7, "text": "myfunc", "type": "function", "signature": "(a)"}
    ]


def test_complete_module_names(kc):
    c = request(kc, kc.complete("import o", 8))["content"]
    assert {"os", "operator", "opcode"} <= set(c["matches"])
    assert all(m.startswith("o") for m in c["matches"])
    assert (c["cursor_start"], c["cursor_end"]) == (7, 8)
    types = c["metadata"]["_jupyter_types_experimental"]
    assert [t["text"] for t in types] == c["matches"]
    os_entry = next(t for t in types if t["text"] == "os")
    assert os_entry == {"start": 7, "end": 8, "text": "os", "type": "module", "signature": ""}


def test_complete_nothing(kc):
    c = request(kc, kc.complete("zzz_no_such_name_qq", 19))["content"]
    assert c["status"] == "ok"
    assert c["matches"] == []
    assert (c["cursor_start"], c["cursor_end"]) == (19, 19)
    assert c["metadata"] == {"_jupyter_types_experimental": []}


def test_inspect_detail_0_builtin(kc):
    reply = request(kc, kc.inspect("len", 3, 0))
    assert reply["msg_type"] == "inspect_reply"
    c = reply["content"]
    assert c["status"] == "ok"
    assert c["found"] is True
    assert c["metadata"] == {}
    assert list(c["data"]) == ["text/plain"]
    assert "len(obj, /)" in c["data"]["text/plain"]
    assert "Return the number of items in a container." in c["data"]["text/plain"]


def test_inspect_user_function_detail_0_and_1(kc):
    execute(kc, DEFINE)
    c0 = request(kc, kc.inspect("myfunc(", 6, 0))["content"]
    assert c0["found"] is True
    plain0 = c0["data"]["text/plain"]
    assert "myfunc(a)" in plain0
    assert "Doc here." in plain0
    assert "return" not in plain0
    c1 = request(kc, kc.inspect("myfunc", 6, 1))["content"]
    assert c1["found"] is True
    assert list(c1["data"]) == ["text/plain"]
    plain1 = c1["data"]["text/plain"]
    assert "Source:" in plain1
    assert "myfunc(a):" in plain1
    assert "return" in plain1 and "a + " in plain1


def test_inspect_not_found(kc):
    c = request(kc, kc.inspect("nope_xyz_missing", 16, 0))["content"]
    assert c == {"status": "ok", "data": {}, "metadata": {}, "found": False}


def test_is_complete(kc):
    cases = {
        "x = 1": {"status": "complete"},
        "for i in range(3):": {"status": "incomplete", "indent": "    "},
        "def f():\n    if x:": {"status": "incomplete", "indent": "        "},
        "import = 7q": {"status": "invalid"},
        "1 +": {"status": "invalid"},
    }
    for code, expected in cases.items():
        reply = request(kc, kc.is_complete(code))
        assert reply["msg_type"] == "is_complete_reply"
        assert reply["content"] == expected, code


def test_history_tail_range_search(kc):
    tag = uuid.uuid4().hex[:8]
    cells = [f"hist_{tag}_a = 1", f"hist_{tag}_b = 2", f"hist_{tag}_a + hist_{tag}_b"]
    for code in cells:
        assert execute(kc, code)[0]["content"]["status"] == "ok"

    reply = request(kc, kc.history(hist_access_type="tail", n=3, output=False, raw=True))
    assert reply["msg_type"] == "history_reply"
    tail = reply["content"]["history"]
    assert reply["content"]["status"] == "ok"
    assert [h[1:] for h in tail] == [[1, cells[0]], [2, cells[1]], [3, cells[2]]]
    session = tail[0][0]
    assert isinstance(session, int) and session >= 1
    assert {h[0] for h in tail} == {session}

    # session 0 asks for the current session; entries carry its real number, as tail's do
    rng = request(kc, kc.history(hist_access_type="range", session=0, start=1, stop=3,
                                 output=False, raw=True))["content"]["history"]
    assert rng == [[session, 1, cells[0]], [session, 2, cells[1]]]
    by_number = request(kc, kc.history(hist_access_type="range", session=session, start=3,
                                       stop=4, output=False, raw=True))["content"]["history"]
    assert by_number == [[session, 3, cells[2]]]

    found = request(kc, kc.history(hist_access_type="search", pattern=f"hist_{tag}_b*",
                                   output=False, raw=True))["content"]["history"]
    assert found == [[session, 2, cells[1]]]

    with_output = request(kc, kc.history(hist_access_type="tail", n=1, output=True,
                                         raw=True))["content"]["history"]
    assert with_output == [[session, 3, [cells[2], None]]]


def test_history_unique_search_and_n(kc):
    tag = uuid.uuid4().hex[:8]
    for _ in range(3):
        execute(kc, f"dup_{tag} = 1")
    execute(kc, f"dup_{tag} = 2")
    unique = request(kc, kc.history(hist_access_type="search", pattern=f"dup_{tag} = 1",
                                    unique=True, output=False, raw=True))["content"]["history"]
    assert [h[2] for h in unique] == [f"dup_{tag} = 1"]
    last_two = request(kc, kc.history(hist_access_type="search", pattern=f"dup_{tag}*",
                                      n=2, output=False, raw=True))["content"]["history"]
    assert [h[1:] for h in last_two] == [[3, f"dup_{tag} = 1"], [4, f"dup_{tag} = 2"]]


def test_comm_info_request_empty(kc):
    reply = request(kc, kc.comm_info())
    assert reply["msg_type"] == "comm_info_reply"
    assert reply["content"] == {"status": "ok", "comms": {}}


def test_comm_info_lists_kernel_comms(kc):
    code = (
        "from comm import create_comm\n"
        "c1 = create_comm(target_name='alpha')\n"
        "c2 = create_comm(target_name='beta')\n"
        "c1.comm_id, c2.comm_id"
    )
    reply, msgs = execute(kc, code)
    result = [m for m in msgs if m["msg_type"] == "execute_result"][0]
    ids = ast.literal_eval(result["content"]["data"]["text/plain"])
    everything = request(kc, kc.comm_info())["content"]
    assert everything == {"status": "ok", "comms": {
        ids[0]: {"target_name": "alpha"}, ids[1]: {"target_name": "beta"}}}
    only_beta = request(kc, kc.comm_info(target_name="beta"))["content"]
    assert only_beta == {"status": "ok", "comms": {ids[1]: {"target_name": "beta"}}}
    none = request(kc, kc.comm_info(target_name="gamma"))["content"]
    assert none == {"status": "ok", "comms": {}}
