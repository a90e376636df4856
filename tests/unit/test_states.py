"""The worker lifecycle table and the shell queue, without processes."""

from __future__ import annotations

import pytest

from kernelsvc.supervisor.relay import ShellQueue
from kernelsvc.supervisor.states import IllegalTransition, Lifecycle, WorkerState
from kernelsvc.supervisor.wire import Inbound


def test_lifecycle_walks_the_table_and_reports_changes():
    seen = []
    life = Lifecycle(on_change=lambda old, new: seen.append((old, new)))
    for state in (WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY, WorkerState.IDLE,
                  WorkerState.STOPPING, WorkerState.DEAD):
        life.to(state)
    assert seen[0] == (WorkerState.DEAD, WorkerState.STARTING)
    assert seen[-1] == (WorkerState.STOPPING, WorkerState.DEAD)
    assert life.is_(WorkerState.DEAD)


@pytest.mark.parametrize(("start", "bad"), [
    (WorkerState.DEAD, WorkerState.BUSY),
    (WorkerState.STARTING, WorkerState.BUSY),
    (WorkerState.STOPPING, WorkerState.IDLE),
])
def test_illegal_transitions_are_refused(start, bad):
    life = Lifecycle()
    path = {WorkerState.DEAD: [], WorkerState.STARTING: [WorkerState.STARTING],
            WorkerState.STOPPING: [WorkerState.STARTING, WorkerState.STOPPING]}[start]
    for state in path:
        life.to(state)
    with pytest.raises(IllegalTransition):
        life.to(bad)


def request(msg_id: str, msg_type: str = "execute_request") -> Inbound:
    return Inbound(idents=[b"client"], header={"msg_id": msg_id, "msg_type": msg_type},
                   frames=[b"sig", b"{}", b"{}", b"{}", b"{}"])


def test_queue_runs_one_request_at_a_time():
    queue = ShellQueue()
    queue.add(request("a"))
    queue.add(request("b"))
    assert queue.start_next().msg_id == "a"
    assert queue.start_next() is None  # "a" still running
    assert queue.finish("b") is None  # not the running one
    assert queue.finish("a").msg_id == "a"
    assert queue.start_next().msg_id == "b"


def test_stop_on_error_takes_only_queued_executes():
    queue = ShellQueue()
    for msg_id, kind in (("e1", "execute_request"), ("c1", "complete_request"),
                         ("e2", "execute_request")):
        queue.add(request(msg_id, kind))
    aborted = queue.take_queued_executes()
    assert [r.msg_id for r in aborted] == ["e1", "e2"]
    assert [r.msg_id for r in queue.take_all()] == ["c1"]


def test_inbound_wire_keeps_identities_and_frames():
    inbound = request("x")
    assert inbound.wire() == [b"client", b"<IDS|MSG>", b"sig", b"{}", b"{}", b"{}", b"{}"]


def test_abort_only_what_waited_when_the_error_reply_went_out():
    queue = ShellQueue()
    queue.add(request("failing"))
    queue.add(request("queued-before"))
    queue.start_next()
    queue.note_reply()  # the error reply leaves now: one request is waiting
    queue.add(request("sent-after-reply"))
    limit = queue.waiting_at_reply
    queue.finish("failing")
    assert [r.msg_id for r in queue.take_queued_executes(limit)] == ["queued-before"]
    assert [r.msg_id for r in queue.take_all()] == ["sent-after-reply"]
