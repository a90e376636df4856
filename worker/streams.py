"""stdout/stderr as IOPub ``stream`` messages: Python writes, and writes to fd 1/2.

``OutStream`` replaces ``sys.stdout``/``sys.stderr``; writes are batched and sent after a
short interval, or at once when the batch is large or the request ends. ``FdCapture`` points
fd 1/2 at a pipe, so output from C code and subprocesses (``!echo``, ``os.system``) arrives in
the same stream.

Order of fd-level output and ``write()`` (``print()``): a reader thread empties the pipe, so a
write first looks whether the pipe holds output that came before it. It looks at most once
per ``CHECK_INTERVAL`` (20 µs) per stream: the system call would otherwise double the cost of
a print in a tight loop. So, for fd 1 and sys.stdout (fd 2 and sys.stderr alike):

* kept: fd output comes before the text of every later write that starts at least 20 µs
  after the fd output was written, or at least 20 µs after the stream's previous write (from
  any thread). Whatever takes that long between two prints is in order: a subprocess or
  ``os.system``, a forked child that is waited for, a C call that writes and then computes.
* not kept: fd output written between two writes less than 20 µs apart (``os.write(1, ...)``
  right between two prints in a tight loop) may come after the text of writes that start
  less than 20 µs after it: a few dozen short lines at most, never more.
* stdout and stderr are two streams, each in order; how their messages interleave is not.
"""

from __future__ import annotations

import codecs
import io
import os
import select
import threading
import weakref
from fcntl import ioctl
from termios import FIONREAD
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING

from kernelsvc.worker import kernel as kernel_module
from kernelsvc.worker.kernel import NO_PARENT

if TYPE_CHECKING:
    from kernelsvc.worker.kernel import Kernel, Request

CHECK_INTERVAL = 20e-6  # seconds: write() looks for fd output at most this often (see above)
FLUSH_INTERVAL = 0.05  # seconds: output appears live, but in few messages
# Characters: a batch this large is sent without waiting. Its message stays under the link's
# COPY_BELOW (64 KiB, supervisor/frames.py), so it is copied, not sent zero-copy (a GIL
# hand-over to pyzmq's garbage-collector thread per message: ~15 % more worker CPU at 96 K),
# and under glibc's mmap threshold (fresh pages for each buffer: 5-10 % more at 256 K).
# Writes are measured only when write() looks for fd output (so a batch can pass this by
# 20 µs of writes): adding up each write's length as it comes makes a print loop ~10 % slower.
FLUSH_SIZE = 56 * 1024
NOTHING = bytes(4)  # FIONREAD's answer for an empty pipe
FLUSH_TIMEOUT = 10.0  # seconds an explicit flush() waits for the IO thread
ALWAYS = float("-inf")  # _look_after of a stream whose every write takes the checked path
# The batch a stream holds when nothing is waiting: its owner is no request.
IDLE: tuple[object, list[str]] = (object(), [])

_streams: weakref.WeakSet[OutStream] = weakref.WeakSet()


def _after_fork() -> None:
    """In a forked child every write takes the checked path, which sends it to the fd."""
    for stream in _streams:
        stream._look_after = ALWAYS


os.register_at_fork(after_in_child=_after_fork)


class OutStream(io.TextIOBase):
    """A text stream whose writes become IOPub ``stream`` messages."""

    # What write() reads: slots, because an attribute in the instance dict of an io.TextIOBase
    # subclass takes ~15 ns to find (CPython does not specialize it), a tenth of a write.
    __slots__ = ("_batch", "_look_after", "_parents", "_main_thread")

    def __init__(self, kernel: Kernel, name: str, fd: int | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.name = name
        self.session = kernel.session
        self.pub_thread = kernel.link
        self._fd = fd
        self._pid = kernel.pid
        self._parents = kernel._parents
        self._main_thread = kernel._main_thread
        self._capture: FdCapture | None = None
        self._send_lock = threading.Lock()  # one sender at a time: sent text keeps its order
        # The text waiting to be sent, with the request it belongs to (None: no request yet).
        # The pair is replaced, never changed, when it is sent or another request writes, so
        # a writer that finds its own request there appends without a lock (see write).
        self._batch: tuple[Request | None, list[str]] = IDLE  # type: ignore[assignment]
        self._size = 0  # characters of the batch counted so far: its first _counted parts
        self._counted = 0
        self._timer_set = False  # the IO thread's timer sends whichever batch it finds
        self._look_after = ALWAYS  # monotonic time from which write() takes the checked path
        self._child_pid: int | None = None
        self._child_parts: list[str] = []
        _streams.add(self)

    # io.TextIOBase API ------------------------------------------------------

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd

    def write(self, string: str) -> int:
        # Every print() comes here twice, so the common case is a clock read, the request's
        # lookup and an append: no lock, no system call. The rest (argument type, closed,
        # forked child, fd output to go first) is checked once the clock passes _look_after.
        if type(string) is not str or monotonic() >= self._look_after:
            return self._write_checked(string)
        parents = self._parents  # Kernel.parent, inlined
        request = parents.get(get_ident()) or parents.get(self._main_thread)
        batch = self._batch
        if batch[0] is not request:
            self._append(string, request)
            return len(string)
        batch[1].append(string)
        if self._batch is not batch:  # sent meanwhile, perhaps without this text (a thread
            self._send(batch)  # switch between the lines above: free-threaded builds)
        return len(string)

    def _write_checked(self, string: str) -> int:
        if not isinstance(string, str):
            raise TypeError(f"write() argument must be str, not {type(string).__name__}")
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if kernel_module._pid != self._pid and self._fd is not None:
            self._write_from_child(string)
            return len(string)
        now = monotonic()
        if now >= self._look_after:
            self._look(now)
        self._append(string, self._parents.get(get_ident()) or self._main_request())
        return len(string)

    def _look(self, now: float) -> None:
        """Fd output that came before this write goes first: still in the pipe (one ioctl),
        or read by the reader thread but not yet added (busy; checked after the pipe)."""
        self._look_after = now + CHECK_INTERVAL
        capture = self._capture
        if capture is not None and (ioctl(capture.read_fd, FIONREAD, NOTHING) != NOTHING
                                    or capture.busy):
            capture.drain()

    def _main_request(self) -> Request | None:
        """The main shell's request: output from threads that are not a shell's goes there."""
        return self._parents.get(self._main_thread)

    def _append(self, string: str, request: Request | None) -> None:
        """Add text of ``request`` under the send lock (the locked path of write())."""
        if not string:
            return
        with self._send_lock:
            batch = self._batch
            if batch[0] is not request:
                batch = self._start_batch(request)
            batch[1].append(string)
            if self._measure(batch[1]) >= FLUSH_SIZE:
                self._publish(batch)

    def _start_batch(self, request: Request | None) -> tuple:
        """Another request's batch is sent first, so each message has one parent."""
        self._publish(self._batch)
        batch = self._batch = (request, [])
        if not self._timer_set:  # else the timer set for an earlier batch sends this one
            self._timer_set = True
            self.kernel.link.call_later(FLUSH_INTERVAL, self._send_from_timer)
        return batch

    def _measure(self, parts: list[str]) -> int:
        """Characters in the batch: its count so far and what writes added since (they do
        not measure themselves: see FLUSH_SIZE)."""
        count = len(parts)
        self._size += sum(map(len, parts[self._counted:count]))
        self._counted = count
        return self._size

    def writelines(self, sequence) -> None:  # type: ignore[override]
        for line in sequence:
            self.write(line)

    def flush(self) -> None:
        """Send everything written so far (fd-level output included) and wait until the
        IO thread has handed it to ZMQ, as ipykernel's flush does."""
        if kernel_module._pid != self._pid:
            self._write_from_child("", force=True)
            return
        self.queue_pending()
        # As long as ipykernel waits: code that flushes and then dies (os._exit) on a
        # loaded machine must still have its output sent.
        self.kernel.link.flush(timeout=FLUSH_TIMEOUT)

    def queue_pending(self) -> None:
        """Queue everything written so far, in order, without waiting (the kernel's own flush:
        the link keeps the order, so a reply queued next cannot overtake it)."""
        if self._capture is not None:
            self._capture.drain()
        self._send(self._batch)

    def close(self) -> None:
        if not self.closed:
            self._send(self._batch)
        super().close()
        self._look_after = ALWAYS

    # internals -------------------------------------------------------------

    def _write_from_child(self, string: str, force: bool = False) -> None:
        """In a forked child (multiprocessing), write whole lines to the fd: the parent's
        capture carries them home, and lines from several children do not interleave."""
        if self._child_pid != os.getpid():
            self._child_pid, self._child_parts = os.getpid(), []
        self._child_parts.append(string)
        if force or "\n" in string:
            data = "".join(self._child_parts).encode("utf-8", "replace")
            self._child_parts = []
            while data:
                data = data[os.write(self._fd, data):]

    def attach_capture(self, capture: FdCapture) -> None:
        self._capture = capture
        self._look_after = ALWAYS

    def _send(self, batch: tuple) -> None:
        # One sender at a time, so two racing sends cannot reorder text. Writers keep
        # appending meanwhile (no lock), so a full link never blocks them.
        with self._send_lock:
            self._publish(batch)

    def _send_from_timer(self) -> None:
        """The IO thread must never wait (it is what drains the link): if another thread
        is sending, try again a little later."""
        if self._send_lock.acquire(blocking=False):
            try:
                self._timer_set = False
                self._publish(self._batch)
            finally:
                self._send_lock.release()
        else:
            self.kernel.link.call_later(FLUSH_INTERVAL, self._send_from_timer)

    def _publish(self, batch: tuple) -> None:
        """Send ``batch`` (the caller holds the send lock). It is retired first; a writer
        that appends to it after that sees so and sends the rest itself."""
        if self._batch is batch:
            self._batch = IDLE  # type: ignore[assignment]
            self._size = self._counted = 0
        request, parts = batch
        count = len(parts)
        if not count:
            return
        text = "".join(parts[:count])
        del parts[:count]  # text appended since count was taken stays, for its writer to send
        parent = request.header if request is not None else NO_PARENT
        cell = getattr(parent, "cell", None)
        if cell is not None and self.kernel.stream_history is not None:
            self.kernel.stream_history(cell, self.name, text)
        budget = self.kernel.budget_for(parent)
        if budget is not None:
            text = budget.take(self.name, text)
        if text:
            self.kernel.publish("stream", {"name": self.name, "text": text}, parent=parent)


class FdCapture:
    """Point ``fd`` at a pipe and feed what arrives into ``stream``."""

    def __init__(self, fd: int, stream: OutStream) -> None:
        self.fd = fd
        self.stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lock = threading.Lock()
        self.busy = False
        self.read_fd, write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.read_fd, False)
        os.dup2(write, fd)  # dup2 clears CLOEXEC on fd, so subprocesses inherit it
        os.close(write)
        self._thread = threading.Thread(target=self._run, name=f"kernelsvc-fd{fd}", daemon=True)
        self._thread.start()
        stream.attach_capture(self)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        while True:
            poller.poll()
            if not self.drain():
                return

    def drain(self) -> bool:
        """Move what the pipe holds into the stream; False once the pipe is closed."""
        with self._lock:
            self.busy = True  # bytes may be out of the pipe but not yet in the stream
            try:
                return self._move()
            finally:
                self.busy = False

    def _move(self) -> bool:
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            text = self._decoder.decode(data)
            if text:
                # No thread tells whose fd output it is: the main shell's request.
                self.stream._append(text, self.stream._main_request())
