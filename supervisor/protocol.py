"""The vocabulary shared by supervisor and worker: message types and internal frames.

Stdlib only, so the worker can import it without pulling in the supervisor.

Internal wire (worker DEALER <-> supervisor ROUTER), one multipart message each::

    worker -> supervisor:  [channel, *jupyter_frames]
    supervisor -> worker:  [channel, *jupyter_frames]

except on ``shell``, where a frame naming the subshell (empty for the main shell) comes
between the channel and the Jupyter frames, both ways, so neither side parses a header
to route; and where ``jupyter_frames`` is the usual ``[*idents, DELIM, sig, header, parent,
metadata, content, *buffers]`` and, for IOPub, the idents are the topic. Frames on
the ``sys`` channel are internal JSON control messages that never reach clients.
"""

from __future__ import annotations

import os
import tempfile
from enum import IntEnum, StrEnum

PROTOCOL_VERSION = "5.4"
DELIM = b"<IDS|MSG>"


class Channel(StrEnum):
    SHELL = "shell"
    CONTROL = "control"
    STDIN = "stdin"
    IOPUB = "iopub"
    SYS = "sys"  # internal: worker lifecycle, never relayed to clients

    frame: bytes  # the channel's name as the frame that carries it (set below, once)


for _channel in Channel:
    _channel.frame = _channel.value.encode()  # read for every message relayed


class SysEvent(StrEnum):
    """Internal control messages on the ``sys`` channel."""

    HELLO = "hello"  # worker -> supervisor: connected, wants its config
    CONFIG = "config"  # supervisor -> worker: key, session, public connection info
    READY = "ready"  # worker -> supervisor: shell built; carries kernel_info content
    DONE = "done"  # worker -> supervisor: a request finished (after its idle status)
    STOP = "stop"  # supervisor -> worker: exit cleanly now
    COMM_OPENED = "comm_opened"  # worker -> supervisor: closed for the frontend if it dies
    COMM_CLOSED = "comm_closed"
    DELETE_SUBSHELL = "delete_subshell"  # supervisor -> worker: end that subshell's thread
    INTERRUPT_SUBSHELLS = "interrupt_subshells"  # supervisor -> worker: KeyboardInterrupt
    # in every subshell thread running a request (SIGINT reaches only the main thread)


class ExecutionState(StrEnum):
    """IOPub ``status`` values (``dead`` is what a kernel with no possible worker shows)."""

    STARTING = "starting"
    BUSY = "busy"
    IDLE = "idle"
    RESTARTING = "restarting"
    DEAD = "dead"


class MsgType(StrEnum):
    EXECUTE_REQUEST = "execute_request"
    EXECUTE_REPLY = "execute_reply"
    INSPECT_REQUEST = "inspect_request"
    COMPLETE_REQUEST = "complete_request"
    HISTORY_REQUEST = "history_request"
    IS_COMPLETE_REQUEST = "is_complete_request"
    COMM_INFO_REQUEST = "comm_info_request"
    COMM_OPEN = "comm_open"
    COMM_MSG = "comm_msg"
    COMM_CLOSE = "comm_close"
    KERNEL_INFO_REQUEST = "kernel_info_request"
    KERNEL_INFO_REPLY = "kernel_info_reply"
    SHUTDOWN_REQUEST = "shutdown_request"
    SHUTDOWN_REPLY = "shutdown_reply"
    INTERRUPT_REQUEST = "interrupt_request"
    INTERRUPT_REPLY = "interrupt_reply"
    USAGE_REQUEST = "usage_request"
    INPUT_REQUEST = "input_request"
    INPUT_REPLY = "input_reply"
    STATUS = "status"
    IOPUB_WELCOME = "iopub_welcome"
    CREATE_SUBSHELL_REQUEST = "create_subshell_request"
    DELETE_SUBSHELL_REQUEST = "delete_subshell_request"
    LIST_SUBSHELL_REQUEST = "list_subshell_request"
    DEBUG_REQUEST = "debug_request"
    DEBUG_EVENT = "debug_event"


# Shell requests the worker answers; anything else on shell is dropped and logged.
WORKER_SHELL_TYPES = frozenset(
    {
        MsgType.EXECUTE_REQUEST,
        MsgType.INSPECT_REQUEST,
        MsgType.COMPLETE_REQUEST,
        MsgType.HISTORY_REQUEST,
        MsgType.IS_COMPLETE_REQUEST,
        MsgType.COMM_INFO_REQUEST,
        MsgType.COMM_OPEN,
        MsgType.COMM_MSG,
        MsgType.COMM_CLOSE,
    }
)


# Frontend messages that get no reply, per the spec.
NO_REPLY = frozenset({MsgType.COMM_OPEN, MsgType.COMM_MSG, MsgType.COMM_CLOSE})


def reply_type(request_type: str) -> str:
    """``execute_request`` -> ``execute_reply``."""
    return request_type.removesuffix("_request") + "_reply"


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2  # bad connection file, port in use: a clear one-line error


INTERRUPT_TARGET = "interrupt-target"  # in the private dir: the msg_id a SIGINT is for
CELL_HASH_SEED = 0x4B535643  # murmur2 seed of cell file names (debugInfo's hashSeed)
MAX_HASHED_CHARS = 1 << 20  # bigger cells keep IPython's names (hashing is pure Python)


def cell_dir(supervisor_pid: int) -> str:
    """Where cells are written for the debugger (``dumpCell``): per user and supervisor, so
    names survive worker restarts; the supervisor removes it when it exits."""
    return os.path.join(tempfile.gettempdir(), f"kernelsvc-cells-{os.getuid()}-{supervisor_pid}")


def dap_failure(request: dict, message: str) -> dict[str, object]:
    """A DAP error response (a debug_reply's content) to ``request`` (a DAP request)."""
    return {"type": "response", "seq": 0, "request_seq": request.get("seq", 0),
            "success": False, "command": str(request.get("command", "")), "message": message,
            "body": {}}
