"""Two clients on one kernel: IOPub is broadcast to both, shell replies go to the sender only."""

from __future__ import annotations

import queue

import pytest

from tests.helpers.kernel import RunningKernel, collect_iopub, get_reply

pytestmark = pytest.mark.timeout(60)

QUIET = 1.0  # how long a client's shell must stay silent to count as "got nothing"


@pytest.fixture
def two_clients(kernel: RunningKernel):
    a = kernel.client()
    b = kernel.client()
    yield a, b
    a.stop_channels()
    b.stop_channels()


def assert_shell_silent(kc, what: str) -> None:
    try:
        msg = kc.get_shell_msg(timeout=QUIET)
    except queue.Empty:
        return
    pytest.fail(
        f"{what}: got {msg['msg_type']} parented to {msg['parent_header'].get('msg_id')} "
        f"(session {msg['parent_header'].get('session')})"
    )


def iopub_until_idle(kc, msg_ids: set[str], timeout: float = 10) -> dict[str, list[dict]]:
    """IOPub messages parented to any of ``msg_ids``, until each has gone idle."""
    by_parent: dict[str, list[dict]] = {m: [] for m in msg_ids}
    pending = set(msg_ids)
    while pending:
        msg = kc.get_iopub_msg(timeout=timeout)
        parent = msg["parent_header"].get("msg_id")
        if parent not in by_parent:
            continue
        by_parent[parent].append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            pending.discard(parent)
    return by_parent


def test_iopub_is_shared_and_the_reply_goes_to_the_sender(two_clients):
    a, b = two_clients
    assert a.session.session != b.session.session

    msg_id = a.execute("print('from client A')")
    reply = get_reply(a, msg_id)
    assert reply["msg_type"] == "execute_reply"
    assert reply["content"]["status"] == "ok"
    assert reply["parent_header"]["session"] == a.session.session

    for kc in (a, b):
        msgs = collect_iopub(kc, msg_id)
        assert [m["msg_type"] for m in msgs] == ["status", "execute_input", "stream", "status"]
        stream = msgs[2]
        assert stream["content"] == {"name": "stdout", "text": "from client A\n"}
        assert stream["parent_header"]["msg_id"] == msg_id
        assert stream["parent_header"]["session"] == a.session.session
        assert msgs[1]["content"]["code"] == "print('from client A')"

    assert_shell_silent(b, "B's shell received A's execute_reply")


def test_each_client_gets_only_its_own_replies(two_clients):
    a, b = two_clients
    a_id = a.execute("'A' * 2")
    b_id = b.execute("'B' * 3")
    a_info = a.kernel_info()  # answered by the supervisor itself, not the worker
    b_complete = b.complete("import o", 8)

    # Order between request types is not promised (kernel_info may overtake a queued
    # execute), so key each client's next two shell messages by their parent.
    a_replies = {m["parent_header"]["msg_id"]: m for m in (a.get_shell_msg(timeout=20),
                                                            a.get_shell_msg(timeout=20))}
    b_replies = {m["parent_header"]["msg_id"]: m for m in (b.get_shell_msg(timeout=20),
                                                            b.get_shell_msg(timeout=20))}
    assert set(a_replies) == {a_id, a_info}
    assert set(b_replies) == {b_id, b_complete}

    assert a_replies[a_id]["msg_type"] == "execute_reply"
    assert a_replies[a_id]["content"]["status"] == "ok"
    assert a_replies[a_info]["msg_type"] == "kernel_info_reply"
    assert a_replies[a_info]["content"]["language_info"]["name"] == "python"
    assert b_replies[b_id]["msg_type"] == "execute_reply"
    assert b_replies[b_id]["content"]["status"] == "ok"
    assert b_replies[b_complete]["msg_type"] == "complete_reply"
    assert "os" in b_replies[b_complete]["content"]["matches"]

    # Both clients see both results on IOPub, each parented to its own request. The two
    # executes came in on different sockets, so either may have run first.
    for kc in (a, b):
        by_parent = iopub_until_idle(kc, {a_id, b_id})
        a_out = [m for m in by_parent[a_id] if m["msg_type"] == "execute_result"]
        b_out = [m for m in by_parent[b_id] if m["msg_type"] == "execute_result"]
        assert [m["content"]["data"]["text/plain"] for m in a_out] == ["'AA'"]
        assert [m["content"]["data"]["text/plain"] for m in b_out] == ["'BBB'"]

    assert_shell_silent(a, "A's shell received one of B's replies")
    assert_shell_silent(b, "B's shell received one of A's replies")
