"""stdout/stderr as IOPub ``stream`` messages: Python writes, and writes to fd 1/2.

``OutStream`` replaces ``sys.stdout``/``sys.stderr``; writes are batched and sent
after a short interval, or at once when the buffer is large or the request ends.
``FdCapture`` points fd 1/2 at a pipe, so output from C code and subprocesses
(``!echo``, ``os.system``) arrives in the same stream, in order.
"""

from __future__ import annotations

import codecs
import io
import os
import select
import threading
from fcntl import ioctl
from termios import FIONREAD
from threading import get_ident
from typing import TYPE_CHECKING

from kernelsvc.worker import kernel as kernel_module
from kernelsvc.worker.kernel import NO_PARENT

if TYPE_CHECKING:
    from kernelsvc.worker.kernel import Kernel

FLUSH_INTERVAL = 0.05  # seconds: output appears live, but in few messages
FLUSH_SIZE = 64 * 1024  # bytes: above this, send without waiting
NOTHING = bytes(4)  # FIONREAD's answer for an empty pipe
FLUSH_TIMEOUT = 10.0  # seconds an explicit flush() waits for the IO thread


class OutStream(io.TextIOBase):
    """A text stream whose writes become IOPub ``stream`` messages."""

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
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._parts: list[str] = []
        self._parent: dict = {}  # the header of the request the buffered text belongs to
        self._size = 0
        self._flush_pending = False
        self._child_pid: int | None = None
        self._child_parts: list[str] = []

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
        # Every print() comes here twice, so the common case is inlined: one system call (is
        # there fd-level output to go first?) and an append under the lock.
        if type(string) is not str and not isinstance(string, str):
            raise TypeError(f"write() argument must be str, not {type(string).__name__}")
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if not string:
            return 0
        if kernel_module._pid != self._pid and self._fd is not None:
            self._write_from_child(string)
            return len(string)
        capture = self._capture
        if capture is not None:
            # Bytes already written to the fd (a finished subprocess, a forked child) came
            # first, so they go first: still in the pipe (one cheap ioctl), or read by the
            # reader thread but not yet appended (busy; checked after the pipe, in this order).
            ioctl(capture.read_fd, FIONREAD, capture.nread)
            if capture.nread != NOTHING or capture.busy:
                capture.drain()
        parents = self._parents  # Kernel.parent_header, inlined
        request = parents.get(get_ident()) or parents.get(self._main_thread)
        parent = request.header if request is not None else NO_PARENT
        with self._lock:  # the common case of _append, inlined: more of this request's text
            if self._parent is parent and self._flush_pending:
                self._parts.append(string)
                self._size += len(string)
                if self._size < FLUSH_SIZE:
                    return len(string)
                full = True
            else:
                full = False
        if full:
            self._send_buffer()
        else:
            self._append(string, parent)
        return len(string)

    def _append(self, string: str, parent: dict | None = None) -> None:
        if parent is None:
            parent = self.kernel.parent_header
        while True:
            with self._lock:
                # The buffer holds one request's text: another request's (a subshell's)
                # goes out first, under its own parent.
                if self._parent is parent or not self._parts:
                    self._parent = parent
                    self._parts.append(string)
                    self._size += len(string)
                    big = self._size >= FLUSH_SIZE
                    if not big:
                        if self._flush_pending:
                            return  # the timer set for the buffer's first text sends it
                        self._flush_pending = True
                    break
            self._send_buffer()
        if big:
            self._send_buffer()
        else:
            self.kernel.link.call_later(FLUSH_INTERVAL, self._send_from_timer)

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
        self._send_buffer()

    def close(self) -> None:
        if not self.closed:
            self._send_buffer()
        super().close()

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

    def _send_buffer(self) -> None:
        # One sender at a time, so two racing flushes cannot reorder text. Writers keep
        # appending meanwhile (a different lock), so a full link never blocks them.
        with self._send_lock:
            self._publish_taken()

    def _send_from_timer(self) -> None:
        """The IO thread must never wait (it is what drains the link): if another thread
        is sending, try again a little later."""
        if self._send_lock.acquire(blocking=False):
            try:
                self._publish_taken()
            finally:
                self._send_lock.release()
        else:
            self.kernel.link.call_later(FLUSH_INTERVAL, self._send_from_timer)

    def _publish_taken(self) -> None:
        with self._lock:
            text = "".join(self._parts)
            parent = self._parent
            self._parts.clear()
            self._size = 0
            self._flush_pending = False
        if not text:
            return
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
        self.nread = bytearray(4)
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
                self.stream._append(text, self.stream.kernel.main_parent_header)
