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
    assert queue.finish("b") == (None, [])  # not the running one
    assert queue.finish("a")[0].msg_id == "a"
    assert queue.start_next().msg_id == "b"


def test_next_request_sent_ahead_runs_when_the_running_one_is_done():
    queue = ShellQueue()
    assert queue.prefetch_next() is None  # nothing runs: nothing to send ahead of
    for msg_id in ("a", "b", "c"):
        queue.add(request(msg_id))
    queue.start_next()
    assert queue.prefetch_next().msg_id == "b"
    assert queue.prefetch_next() is None  # one ahead at most
    assert queue.queued == 2  # "b" (ahead) and "c"
    done, aborted = queue.finish("a")
    assert (done.msg_id, aborted, queue.running.msg_id) == ("a", [], "b")
    assert queue.prefetch_next().msg_id == "c"
    queue.note_reply()
    done, _ = queue.finish("b")
    queue.add(request("d"))
    queue.note_reply()  # "c" replied: "d" waits for its "done" (it may come after the error)
    assert queue.prefetch_next() is None


def test_request_sent_ahead_waits_again_when_the_worker_is_gone():
    queue = ShellQueue()
    for msg_id in ("a", "b", "c"):
        queue.add(request(msg_id))
    queue.start_next()
    queue.prefetch_next()
    assert queue.take_running().msg_id == "a"
    assert [r.msg_id for r in queue.take_all()] == ["b", "c"]


def test_stop_on_error_aborts_the_execute_sent_ahead_first():
    queue = ShellQueue()
    for msg_id in ("failing", "ahead", "queued", "late"):
        queue.add(request(msg_id))
    queue.start_next()
    queue.prefetch_next()
    queue.note_reply()  # "queued" and "late" are waiting (and "ahead" was sent)
    queue.add(request("sent-after-reply"))
    done, aborted = queue.finish("failing", aborting=True)
    assert [r.msg_id for r in aborted] == ["ahead", "queued", "late"]
    assert queue.running is None
    assert [r.msg_id for r in queue.take_all()] == ["sent-after-reply"]


def test_stop_on_error_lets_a_non_execute_sent_ahead_run():
    queue = ShellQueue()
    queue.add(request("failing"))
    queue.add(request("complete", "complete_request"))
    queue.add(request("queued"))
    queue.start_next()
    queue.prefetch_next()
    queue.note_reply()
    done, aborted = queue.finish("failing", aborting=True)
    assert [r.msg_id for r in aborted] == ["queued"]
    assert queue.running.msg_id == "complete"


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
    done, aborted = queue.finish("failing", aborting=True)
    assert [r.msg_id for r in aborted] == ["queued-before"]
    assert [r.msg_id for r in queue.take_all()] == ["sent-after-reply"]
