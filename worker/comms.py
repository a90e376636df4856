"""Comms over the worker's link, plugged into the ``comm`` package so ipywidgets works."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import comm as comm_package
from comm.base_comm import BaseComm
from comm.base_comm import CommManager as BaseCommManager

from kernelsvc.supervisor.protocol import SysEvent

if TYPE_CHECKING:
    from kernelsvc.worker.kernel import Kernel, Request

_kernel: Kernel | None = None
_manager: CommManager | None = None


class Comm(BaseComm):
    """A comm whose messages go to the frontend on IOPub."""

    def __init__(self, target_name: str = "comm", data=None, metadata=None, buffers=None,
                 **kwargs: Any) -> None:
        self.kernel = _kernel
        super().__init__(target_name=target_name, data=data, metadata=metadata, buffers=buffers,
                         **kwargs)

    def publish_msg(self, msg_type: str, data=None, metadata=None, buffers=None,
                    **keys: Any) -> None:
        if self.kernel is None:
            return
        content = {"data": {} if data is None else data, "comm_id": self.comm_id, **keys}
        self.kernel.flush_streams()
        self.kernel.publish(msg_type, content, metadata=metadata or {}, buffers=buffers)


class CommManager(BaseCommManager):
    """The comm package's manager, with ``kernel`` for code that looks for it.

    It tells the supervisor which comms are open, so that if this worker dies the
    frontend hears ``comm_close`` for each of them.
    """

    def __init__(self, kernel: Kernel | None = None) -> None:
        super().__init__()
        self.kernel = kernel

    def register_comm(self, comm: BaseComm) -> str:
        comm_id = super().register_comm(comm)
        self._tell_supervisor(SysEvent.COMM_OPENED, comm_id)
        return comm_id

    def unregister_comm(self, comm: BaseComm) -> None:
        had = comm.comm_id in self.comms
        super().unregister_comm(comm)
        if had:
            self._tell_supervisor(SysEvent.COMM_CLOSED, comm.comm_id)

    def _tell_supervisor(self, event: SysEvent, comm_id: str) -> None:
        if self.kernel is not None:
            self.kernel.link.send_sys(event, comm_id=comm_id)


def create_comm(*args: Any, **kwargs: Any) -> Comm:
    return Comm(*args, **kwargs)


def get_comm_manager() -> CommManager:
    global _manager
    if _manager is None:
        _manager = CommManager(_kernel)
    return _manager


def install(kernel: Kernel) -> CommManager:
    """Make ``comm.create_comm`` and ``comm.get_comm_manager`` ours."""
    global _kernel
    _kernel = kernel
    comm_package.create_comm = create_comm
    comm_package.get_comm_manager = get_comm_manager
    manager = get_comm_manager()
    manager.kernel = kernel
    return manager


def dispatch(request: Request) -> None:
    """Hand a frontend comm_open/comm_msg/comm_close to the manager."""
    manager = get_comm_manager()
    handlers = {
        "comm_open": manager.comm_open,
        "comm_msg": manager.comm_msg,
        "comm_close": manager.comm_close,
    }
    handlers[request.msg_type](None, request.idents, request.msg)


def describe(target_name: str | None) -> dict[str, dict[str, str]]:
    comms = get_comm_manager().comms
    return {
        comm_id: {"target_name": c.target_name}
        for comm_id, c in comms.items()
        if target_name is None or c.target_name == target_name
    }

