"""execute_request semantics: counts, silent, user_expressions, errors, payloads, aborts."""

from __future__ import annotations

from tests.helpers.kernel import collect_iopub, execute, get_reply


def answer_input(kc, request: dict, value: str) -> None:
    """An input_reply parented to the input_request (what JupyterLab sends)."""
    kc.stdin_channel.send(kc.session.msg("input_reply", {"value": value}, parent=request["header"]))


def types(msgs: list[dict]) -> list[str]:
    return [m["msg_type"] for m in msgs]


def of_type(msgs: list[dict], msg_type: str) -> list[dict]:
    return [m["content"] for m in msgs if m["msg_type"] == msg_type]


def test_normal_execute_counts(kc):
    reply, msgs = execute(kc, "1 + 1")
    assert reply["content"]["execution_count"] == 1
    assert of_type(msgs, "execute_input") == [{"code": "1 + 1", "execution_count": 1}]
    assert of_type(msgs, "execute_result") == [
        {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": 1}
    ]
    reply, msgs = execute(kc, "2 + 2")
    assert reply["content"]["execution_count"] == 2
    assert of_type(msgs, "execute_input")[0]["execution_count"] == 2
    assert of_type(msgs, "execute_result")[0]["execution_count"] == 2


def test_silent_sends_no_input_or_result_and_keeps_count(kc):
    execute(kc, "x = 1")  # shell count is now 2
    reply, msgs = execute(kc, "x + 10", silent=True, store_history=False)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    assert types(msgs) == ["status", "status"]
    assert [m["content"]["execution_state"] for m in msgs] == ["busy", "idle"]
    # the silent cell did run, and the count did not move
    reply, msgs = execute(kc, "x")
    assert reply["content"]["execution_count"] == 2
    assert of_type(msgs, "execute_input") == [{"code": "x", "execution_count": 2}]


def test_silent_cell_side_effects_happen(kc):
    execute(kc, "y = 5", silent=True, store_history=False)
    reply, msgs = execute(kc, "y * 2")
    assert reply["content"]["execution_count"] == 1
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "10"}


def test_store_history_false_count_rules(kc):
    execute(kc, "a = 1")  # N becomes 2
    reply, msgs = execute(kc, "a + 1", store_history=False)
    # research table: execute_input N, execute_result N-1, reply N-1, shell stays at N
    assert of_type(msgs, "execute_input") == [{"code": "a + 1", "execution_count": 2}]
    assert of_type(msgs, "execute_result") == [
        {"data": {"text/plain": "2"}, "metadata": {}, "execution_count": 1}
    ]
    assert reply["content"]["execution_count"] == 1
    reply, msgs = execute(kc, "a + 2")
    assert of_type(msgs, "execute_input")[0]["execution_count"] == 2
    assert of_type(msgs, "execute_result")[0]["execution_count"] == 2
    assert reply["content"]["execution_count"] == 2


def test_empty_code_does_not_use_a_count(kc):
    execute(kc, "a = 1")
    reply, msgs = execute(kc, "")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    assert of_type(msgs, "execute_input") == [{"code": "", "execution_count": 2}]
    assert of_type(msgs, "execute_result") == []
    reply, _ = execute(kc, "a")
    assert reply["content"]["execution_count"] == 2


def test_user_expressions_ok_and_error(kc):
    reply, _ = execute(kc, "a = 5", user_expressions={"ok": "a + 1", "bad": "1/0"})
    content = reply["content"]
    assert content["status"] == "ok"
    exprs = content["user_expressions"]
    assert set(exprs) == {"ok", "bad"}
    assert exprs["ok"] == {"status": "ok", "data": {"text/plain": "6"}, "metadata": {}}
    bad = exprs["bad"]
    assert bad["status"] == "error"
    assert bad["ename"] == "ZeroDivisionError"
    assert bad["evalue"] == "division by zero"
    assert len(bad["traceback"]) == 1
    assert "ZeroDivisionError" in bad["traceback"][0]


def test_error_reply_and_single_iopub_error(kc):
    # stop_on_error=False: the follow-up cell below must not race the abort window
    reply, msgs = execute(kc, "1/0", stop_on_error=False)
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "ZeroDivisionError"
    assert content["evalue"] == "division by zero"
    assert content["execution_count"] == 1
    assert isinstance(content["traceback"], list) and len(content["traceback"]) >= 2
    assert all(isinstance(line, str) for line in content["traceback"])
    assert "ZeroDivisionError" in content["traceback"][-1]
    assert content["user_expressions"] == {}
    assert content["engine_info"]["engine_id"] == -1
    assert content["engine_info"]["method"] == "execute"
    assert reply["metadata"]["status"] == "error"
    # exactly one output message: the error, no stderr stream
    assert types(msgs) == ["status", "execute_input", "error", "status"]
    error = of_type(msgs, "error")[0]
    assert error["ename"] == "ZeroDivisionError"
    assert error["evalue"] == "division by zero"
    assert error["traceback"] == content["traceback"]
    # an error still uses up a count
    reply, _ = execute(kc, "1")
    assert reply["content"]["execution_count"] == 2


def test_syntax_error_reply(kc):
    reply, msgs = execute(kc, "1 +", stop_on_error=False)
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "SyntaxError"
    assert content["evalue"].startswith("invalid syntax (")
    assert content["evalue"].endswith(", line 1)")
    assert content["execution_count"] == 1
    assert "SyntaxError" in content["traceback"][-1]
    errors = of_type(msgs, "error")
    assert len(errors) == 1
    assert errors[0]["ename"] == "SyntaxError"
    assert of_type(msgs, "stream") == []
    reply, _ = execute(kc, "2")
    assert reply["content"]["execution_count"] == 2


def test_stop_on_error_aborts_queued_executes(kc):
    # The first cell waits for stdin, so the next two are surely queued when it fails.
    first = kc.execute("input()\n1/0", allow_stdin=True)
    second = kc.execute("second = 2")
    third = kc.execute("third = 3")
    request = kc.get_stdin_msg(timeout=10)
    assert request["parent_header"]["msg_id"] == first
    answer_input(kc, request, "")
    replies = {}
    for msg_id in (first, second, third):
        replies[msg_id] = get_reply(kc, msg_id)
    assert replies[first]["content"]["status"] == "error"
    assert replies[first]["content"]["ename"] == "ZeroDivisionError"
    for msg_id in (second, third):
        assert replies[msg_id]["msg_type"] == "execute_reply"
        assert replies[msg_id]["content"]["status"] == "aborted"
        assert replies[msg_id]["metadata"]["status"] == "aborted"
    # the aborted cells did not run
    reply, msgs = execute(kc, "'second' in dir(), 'third' in dir()")
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "(False, False)"}


def test_non_execute_queued_behind_a_failing_cell_still_runs(kc):
    # The next request goes to the worker while a cell runs; stop_on_error must still abort
    # only the executes among what was queued, and answer the rest.
    first = kc.execute("input()\n1/0", allow_stdin=True)
    complete = kc.complete("impo", 4)
    third = kc.execute("third = 3")
    answer_input(kc, kc.get_stdin_msg(timeout=10), "")
    replies = {}
    while len(replies) < 3:  # the aborted reply may come before the completion's
        msg = kc.get_shell_msg(timeout=10)
        replies[msg["parent_header"]["msg_id"]] = msg
    assert replies[first]["content"]["ename"] == "ZeroDivisionError"
    reply = replies[complete]
    assert reply["msg_type"] == "complete_reply" and reply["content"]["status"] == "ok"
    assert "import" in reply["content"]["matches"]
    assert replies[third]["content"]["status"] == "aborted"
    reply, msgs = execute(kc, "'third' in dir()")
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "False"}


def test_pipelined_executes_run_in_order_with_their_own_output(kc):
    msg_ids = [kc.execute(f"print('cell', {i})\n{i}") for i in range(40)]
    replies = [get_reply(kc, msg_id) for msg_id in msg_ids]
    assert [r["content"]["status"] for r in replies] == ["ok"] * 40
    counts = [r["content"]["execution_count"] for r in replies]
    assert counts == list(range(counts[0], counts[0] + 40))
    for i, msg_id in enumerate(msg_ids):
        msgs = collect_iopub(kc, msg_id)
        assert [m["content"]["text"] for m in msgs if m["msg_type"] == "stream"] == [f"cell {i}\n"]
        assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": str(i)}


def test_execute_sent_after_error_reply_is_not_aborted(kc):
    """stop_on_error aborts only what was queued when the error happened.

    Once the client has the error reply and the idle status, a new execute must run.
    (ipykernel 7 aborts only the requests already waiting behind the failed one.)
    """
    statuses = []
    for _ in range(100):
        reply, _ = execute(kc, "1/0")
        assert reply["content"]["status"] == "error"
        reply, _ = execute(kc, "'ran'")
        statuses.append(reply["content"]["status"])
    assert statuses.count("aborted") == 0, f"{statuses.count('aborted')} of 100 aborted"
    assert set(statuses) == {"ok"}


def test_stop_on_error_false_lets_next_run(kc):
    first = kc.execute("input()\n1/0", allow_stdin=True, stop_on_error=False)
    second = kc.execute("after = 7\nafter")
    answer_input(kc, kc.get_stdin_msg(timeout=10), "")
    assert get_reply(kc, first)["content"]["status"] == "error"
    reply = get_reply(kc, second)
    assert reply["content"]["status"] == "ok"
    collect_iopub(kc, first)
    msgs = collect_iopub(kc, second)
    assert of_type(msgs, "execute_result")[0]["data"] == {"text/plain": "7"}


def test_pager_payload_for_help(kc):
    reply, msgs = execute(kc, "len?")
    content = reply["content"]
    assert content["status"] == "ok"
    payload = content["payload"]
    assert len(payload) == 1
    page = payload[0]
    assert page["source"] == "page"
    assert page["start"] == 0
    assert list(page["data"]) == ["text/plain"]
    text = page["data"]["text/plain"]
    assert "len(obj, /)" in text
    assert "Return the number of items in a container." in text
    assert types(msgs) == ["status", "execute_input", "status"]


def test_set_next_input_payload(kc):
    reply, _ = execute(kc, "get_ipython().set_next_input('x')")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["payload"] == [
        {"source": "set_next_input", "text": "x", "replace": False}
    ]
    # payloads are cleared after each reply
    reply, _ = execute(kc, "1")
    assert reply["content"]["payload"] == []


def test_top_level_await(kc):
    reply, msgs = execute(kc, "import asyncio\nawait asyncio.sleep(0)\n5")
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "execute_result") == [
        {"data": {"text/plain": "5"}, "metadata": {}, "execution_count": 1}
    ]


def test_reply_metadata(kc):
    reply, _ = execute(kc, "1")
    md = reply["metadata"]
    assert md["status"] == "ok"
    assert md["dependencies_met"] is True
    assert isinstance(md["engine"], str) and len(md["engine"]) == 36
    assert "started" in md
