"""send_frames/recv_frames over real ZMQ sockets: whole messages, in order, any size."""

import pytest
import zmq

from kernelsvc.supervisor.frames import COPY_BELOW, recv_frames, send_frames


@pytest.fixture
def pair():
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://frames")
    b.connect("inproc://frames")
    yield a, b
    a.close(linger=0)
    b.close(linger=0)
    ctx.term()


def test_messages_arrive_whole_and_in_order(pair):
    a, b = pair
    big = bytes(range(256)) * (COPY_BELOW // 256 * 3)  # sent without a copy
    first = [b"id", b"<IDS|MSG>", b"", memoryview(b"header"), big]
    second = [b"only"]
    send_frames(a, first)
    send_frames(a, second)
    assert b.poll(5000)
    assert recv_frames(b) == [b"id", b"<IDS|MSG>", b"", b"header", big]
    assert recv_frames(b) == [b"only"]


def test_nothing_ready_raises_again(pair):
    _, b = pair
    with pytest.raises(zmq.Again):
        recv_frames(b)


def test_a_frame_that_is_no_buffer_fails_before_anything_is_sent(pair):
    a, b = pair
    with pytest.raises(TypeError):
        send_frames(a, [b"first", object()])
    send_frames(a, [b"next"])
    assert b.poll(5000)
    assert recv_frames(b) == [b"next"]  # not glued to a half-sent message
