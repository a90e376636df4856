"""kernelsvc worker: IPython speaking the Jupyter protocol to the supervisor.

The names below are the user-facing API for code running in the kernel
(the same names ipykernel offers): streams, the IOPub thread, comms and the
connection helpers. They are imported lazily so the worker starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "OutStream": "kernelsvc.worker.streams",
    "IOPubThread": "kernelsvc.worker.link",
    "Comm": "kernelsvc.worker.comms",
    "CommManager": "kernelsvc.worker.comms",
    "create_comm": "kernelsvc.worker.comms",
    "get_comm_manager": "kernelsvc.worker.comms",
    "get_connection_file": "kernelsvc.worker.connect",
    "get_connection_info": "kernelsvc.worker.connect",
    "write_connection_file": "kernelsvc.worker.connect",
    "connect_qtconsole": "kernelsvc.worker.connect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kernelsvc.worker' has no attribute {name!r}")
