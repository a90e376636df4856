"""input() and getpass() as stdin ``input_request`` round trips to the frontend."""

from __future__ import annotations

import builtins
import contextlib
import getpass as getpass_module
import threading
from typing import TYPE_CHECKING

from IPython.core.error import StdinNotImplementedError

if TYPE_CHECKING:
    from kernelsvc.worker.kernel import Kernel

_real_input = builtins.input
_real_getpass = getpass_module.getpass


def _ask(kernel: Kernel, prompt: str, password: bool) -> str:
    if threading.current_thread() is not threading.main_thread():
        # One frontend prompt, read by the main shell: a subshell (or a user thread) asking
        # at the same time would take the main cell's answer.
        raise StdinNotImplementedError("input() is only available in the main shell")
    kernel.flush_streams()
    # Forget replies to earlier, abandoned requests (an interrupted input()).
    while not kernel.link.stdin.empty():
        kernel.link.stdin.get_nowait()
    kernel.send_stdin_request({"prompt": str(prompt), "password": password})
    while True:
        try:
            frames = kernel.link.stdin.get()
        except KeyboardInterrupt:
            raise KeyboardInterrupt("Interrupted by user") from None
        idents, msg_frames = kernel.session.feed_identities(frames)
        reply = kernel.session.deserialize(msg_frames)
        parent_id = reply["parent_header"].get("msg_id")
        # jupyter_client's kc.input() sends no parent; a reply naming another request is stale.
        if parent_id in (None, _last_request_id(kernel)):
            break
    value = reply["content"].get("value", "")
    if value == "\x04":  # ctrl-D at the frontend's prompt, as ipykernel treats it
        raise EOFError("EOF when reading a line")
    return value


def _last_request_id(kernel: Kernel) -> str | None:
    return kernel.last_stdin_msg_id


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise StdinNotImplementedError(
            f"{what} was called, but this frontend does not support input requests."
        )

    return refuse


@contextlib.contextmanager
def stdin_allowed(kernel: Kernel, allowed: bool):
    """Route input()/getpass() to the frontend for one request (or refuse them)."""
    if allowed:
        builtins.input = lambda prompt="": _ask(kernel, prompt, password=False)
        getpass_module.getpass = lambda prompt="Password: ", stream=None: _ask(
            kernel, prompt, password=True
        )
    else:
        builtins.input = _refuse("raw_input")
        getpass_module.getpass = _refuse("getpass")
    try:
        yield
    finally:
        builtins.input = _real_input
        getpass_module.getpass = _real_getpass
