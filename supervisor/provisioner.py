"""A jupyter_client kernel provisioner that lets Jupyter use kernelsvc's in-place restart.

A stock KernelManager restarts a kernel by asking it to shut down, waiting for the
process to exit (killing it after a while) and launching a new one. With this
provisioner (named in the kernelspec's metadata), ``restart_kernel()`` — Jupyter
Server's restart button, nbclient, papermill — becomes kernelsvc's in-place restart:
same process, same ports, a fresh worker in milliseconds.

    kernel.json: "metadata": {"kernel_provisioner": {"provisioner_name": "kernelsvc"}}

How: the kernel is launched with ``--restart-mode in-place``. When the manager asks
for a restart, the provisioner waits for the supervisor's ``shutdown_reply`` on IOPub
(so the restart has been taken in hand, and later requests wait for the new worker),
tells the manager the process has exited, and answers the manager's relaunch with the
process that is still running.
"""

from __future__ import annotations

import asyncio
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.provisioning import LocalProvisioner
from jupyter_client.session import Session

from kernelsvc.supervisor.control import SHUTDOWN_TOPIC

RESTART_ACK_TIMEOUT = 5.0


class KernelsvcProvisioner(LocalProvisioner):  # type: ignore[misc]
    """LocalProvisioner, with restarts done in place by the running kernelsvc."""

    _restarting_in_place = False
    _iopub: zmq.asyncio.Socket | None = None
    _ctx: zmq.asyncio.Context | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        cmd = list(kwargs.get("cmd", []))
        if cmd and "--restart-mode" not in cmd:
            kwargs["cmd"] = [*cmd, "--restart-mode", "in-place"]
        return kwargs

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        if self._restarting_in_place and self.process is not None \
                and self.process.poll() is None:
            self._restarting_in_place = False
            self.log.info("kernelsvc restarted in place (pid %s)", self.process.pid)
            return self.connection_info
        self._restarting_in_place = False
        info = await super().launch_kernel(cmd, **kwargs)
        self._listen(info)
        return info

    async def shutdown_requested(self, restart: bool = False) -> None:
        await super().shutdown_requested(restart=restart)
        if restart and self.process is not None and self.process.poll() is None:
            self._restarting_in_place = await self._restart_acknowledged()

    async def poll(self) -> int | None:
        if self._restarting_in_place:
            return 0  # the manager waits for an exit: the old kernel is gone, in effect
        return await super().poll()

    async def wait(self) -> int | None:
        if self._restarting_in_place:
            return 0
        return await super().wait()

    async def send_signal(self, signum: int) -> None:
        if not self._restarting_in_place:
            await super().send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        if not self._restarting_in_place:
            await super().kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        if not self._restarting_in_place:
            await super().terminate(restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        if not restart:
            self._close_iopub()
        await super().cleanup(restart=restart)

    # ------------------------------------------------------------ IOPub

    def _listen(self, info: dict[str, Any]) -> None:
        """Subscribe early (a SUB misses what was sent before it joined)."""
        self._close_iopub()
        self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.SUB)
        sock.linger = 0
        sock.setsockopt(zmq.SUBSCRIBE, SHUTDOWN_TOPIC)  # nothing else piles up here
        ip = info.get("ip", "127.0.0.1")
        port = info["iopub_port"]
        transport = info.get("transport", "tcp")
        endpoint = f"ipc://{ip}-{port}" if transport == "ipc" else f"tcp://{ip}:{port}"
        sock.connect(endpoint)
        self._iopub = sock
        key = info.get("key", b"")
        self._session = Session(key=key if isinstance(key, bytes) else key.encode(),
                                signature_scheme=info.get("signature_scheme", "hmac-sha256"))

    async def _restart_acknowledged(self) -> bool:
        """The supervisor publishes shutdown_reply(restart=True) once it has begun."""
        if self._iopub is None:
            return False
        try:
            return await asyncio.wait_for(self._await_restart_reply(), RESTART_ACK_TIMEOUT)
        except TimeoutError:
            self.log.warning("kernelsvc did not acknowledge the restart; relaunching instead")
            return False

    async def _await_restart_reply(self) -> bool:
        assert self._iopub is not None
        while True:
            frames = await self._iopub.recv_multipart()
            try:
                _, msg_frames = self._session.feed_identities(frames)
                msg = self._session.deserialize(msg_frames)
            except Exception:
                continue
            if msg["msg_type"] == "shutdown_reply" and msg["content"].get("restart"):
                return True

    def _close_iopub(self) -> None:
        if self._iopub is not None:
            self._iopub.close(linger=0)
            self._iopub = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
