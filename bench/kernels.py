"""Launching kernelsvc and ipykernel as Jupyter Server does, and talking to them.

Each kernel gets an `AsyncIOLoopKernelManager` (jupyter_client.ioloop) built from a kernelspec
in a temporary directory, and its channels are the manager's `ZMQStream`s
(`km.connect_shell()`...), read by callbacks on the running loop, as Jupyter Server reads them.
Every message is timestamped on arrival with `time.monotonic()` (CLOCK_MONOTONIC, the clock a
cell can read too) and filed under its parent's msg_id.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_client.kernelspec import KernelSpecManager

KINDS = ("kernelsvc", "ipykernel")
SPEC_NAME = {"kernelsvc": "kernelsvc", "ipykernel": "python3-bench"}
now = time.monotonic


def isolate_env(tmp: Path) -> dict[str, str]:
    """Private IPython/Jupyter directories, inherited by every kernel the harness starts."""
    env = {
        "IPYTHONDIR": str(tmp / "ipython"),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(tmp / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter-runtime"),
        "JUPYTER_PATH": str(tmp / "jupyter-path"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for value in env.values():
        if value.startswith(str(tmp)):
            Path(value).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    return env


def install_specs(tmp: Path) -> dict[str, str]:
    """kernelsvc through `kernelsvc install --prefix`; ipykernel as a plain kernel.json."""
    prefix = tmp / "prefix"
    exe = Path(sys.executable).with_name("kernelsvc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "kernelsvc.supervisor"]
    # --max-output-bytes 0: no per-cell output budget (the install default keeps 1M), since
    # the output benchmark prints 20 MB and checks every byte.
    subprocess.run([*cmd, "install", "--prefix", str(prefix), "--max-output-bytes", "0"],
                   check=True, capture_output=True, timeout=60)
    ipk = tmp / "ipk-kernels" / SPEC_NAME["ipykernel"]
    ipk.mkdir(parents=True)
    (ipk / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel, bench)",
        "language": "python",
        "metadata": {"debugger": True},
    }, indent=1))
    return {"kernelsvc": str(prefix / "share" / "jupyter" / "kernels"),
            "ipykernel": str(ipk.parent)}


class Procs:
    """Every process the harness started, so each can be killed by pid at the end."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, float], psutil.Process] = {}

    def add_tree(self, pid: int | None) -> None:
        if not pid:
            return
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                self.seen.setdefault((proc.pid, proc.create_time()), proc)
        except psutil.Error:
            pass

    def kill_all(self) -> list[int]:
        killed = []
        for proc in list(self.seen.values()):
            try:
                if proc.is_running():  # also guards against a reused pid
                    proc.kill()
                    killed.append(proc.pid)
            except psutil.Error:
                pass
        psutil.wait_procs(list(self.seen.values()), timeout=5)
        return killed


class Rec:
    """What came back for one request."""

    __slots__ = ("sent", "reply", "reply_t", "busy_t", "idle_t", "result", "result_t",
                 "displays", "display_t", "stream_bytes", "stream_msgs", "chunks", "keep",
                 "error", "idle_missed")

    def __init__(self, sent: float, keep: bool = False) -> None:
        self.sent = sent
        self.reply: dict | None = None
        self.reply_t: float | None = None
        self.busy_t: float | None = None
        self.idle_t: float | None = None
        self.result: dict | None = None
        self.result_t: float | None = None
        self.displays: list[dict] = []
        self.display_t: float | None = None
        self.stream_bytes = 0
        self.stream_msgs = 0
        self.chunks: list[str] = []
        self.keep = keep
        self.error: dict | None = None
        self.idle_missed = False

    @property
    def status(self) -> str | None:
        return self.reply["content"].get("status") if self.reply else None

    @property
    def ename(self) -> str | None:
        return self.reply["content"].get("ename") if self.reply else None


class Kernel:
    """One kernel: its manager, its streams and what arrived on them."""

    def __init__(self, kind: str, km: AsyncIOLoopKernelManager, procs: Procs) -> None:
        self.kind = kind
        self.km = km
        self.procs = procs
        self.session = km.session
        self.recs: dict[str, Rec] = {}
        self.orphans: deque = deque(maxlen=200)  # (time, channel, msg_type, state)
        self.waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self.streams: dict[str, Any] = {}
        self.bad = 0

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def launch(cls, kind: str, spec_dirs: dict[str, str], procs: Procs, log,
                     timeout: float = 60) -> tuple[Kernel, float]:
        """Start a kernel and connect its streams; returns it and the launch time."""
        km = AsyncIOLoopKernelManager(
            kernel_name=SPEC_NAME[kind],
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[spec_dirs[kind]]))
        t0 = now()
        try:
            await asyncio.wait_for(km.start_kernel(stdout=log, stderr=log), timeout)
        finally:
            if km.provisioner is not None and km.provisioner.process is not None:
                procs.add_tree(km.provisioner.process.pid)
        kernel = cls(kind, km, procs)
        kernel.connect()
        return kernel, t0

    def connect(self) -> None:
        ident = self.session.bsession
        self.streams = {"shell": self.km.connect_shell(identity=ident),
                        "iopub": self.km.connect_iopub(),
                        "control": self.km.connect_control(identity=ident)}
        for channel, stream in self.streams.items():
            stream.on_recv(lambda frames, channel=channel: self._on_recv(channel, frames))

    @property
    def pid(self) -> int | None:
        proc = self.km.provisioner.process if self.km.provisioner else None
        return proc.pid if proc is not None else None

    def tree(self) -> list[psutil.Process]:
        if self.pid is None:
            return []
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def track(self) -> None:
        self.procs.add_tree(self.pid)

    def calm_restarter(self) -> None:
        """Make the KernelRestarter treat the kernel as one that has been up longer than its
        stable_start_time (10 s): keep the ports on a restart and do not count earlier
        crashes against restart_limit — the state of a user's kernel that crashes after a
        while, not one crash-looping at start."""
        restarter = getattr(self.km, "_restarter", None)
        if restarter is not None:
            restarter._initial_startup = False
            restarter._restarting = False
            restarter._restart_count = 0

    async def close(self) -> None:
        for stream in self.streams.values():
            try:
                stream.on_recv(None)
                stream.close(linger=0)
            except Exception:
                pass
        self.streams = {}
        try:
            tree = self.tree()
        except psutil.Error:
            tree = []
        self.track()
        try:
            await asyncio.wait_for(self.km.shutdown_kernel(now=True), 20)
        except Exception:
            pass
        for proc in tree:  # what the manager's kill left behind (workers die by PDEATHSIG)
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                pass
        for fut in [f for _, f in self.waiters if not f.done()]:
            fut.cancel()
        self.waiters.clear()

    # ------------------------------------------------------------ messages in

    def _on_recv(self, channel: str, frames: list[bytes]) -> None:
        t = now()
        try:
            _, parts = self.session.feed_identities(frames)
            msg = self.session.deserialize(parts)
        except Exception:
            self.bad += 1
            return
        mtype = msg["msg_type"]
        content = msg["content"]
        rec = self.recs.get(msg["parent_header"].get("msg_id"))
        if rec is None:
            self.orphans.append((t, channel, mtype, content.get("execution_state")))
        elif channel != "iopub":
            if mtype.endswith("_reply"):
                rec.reply, rec.reply_t = msg, t
        elif mtype == "status":
            state = content.get("execution_state")
            if state == "busy" and rec.busy_t is None:
                rec.busy_t = t
            elif state == "idle":
                rec.idle_t = t
        elif mtype == "stream":
            text = content.get("text", "")
            rec.stream_bytes += len(text)
            rec.stream_msgs += 1
            if rec.keep:
                rec.chunks.append(text)
        elif mtype == "execute_result":
            rec.result, rec.result_t = msg, t
        elif mtype == "display_data":
            rec.displays.append(msg)
            rec.display_t = t
        elif mtype == "error":
            rec.error = content
        if self.waiters:
            self._check()

    def _check(self) -> None:
        keep = []
        for pred, fut in self.waiters:
            if fut.done():
                continue
            try:
                ok = pred()
            except Exception as exc:
                fut.set_exception(exc)
                continue
            if ok:
                fut.set_result(True)
            else:
                keep.append((pred, fut))
        self.waiters = keep

    async def wait(self, pred: Callable[[], bool], timeout: float, what: str = "") -> None:
        if pred():
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((pred, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.kind}: no {what or 'answer'} within {timeout:g} s") \
                from None

    # ------------------------------------------------------------ messages out

    def send(self, channel: str, msg_type: str, content: dict, keep: bool = False,
             metadata: dict | None = None) -> str:
        msg = self.session.msg(msg_type, content, metadata=metadata)
        msg_id = msg["header"]["msg_id"]
        self.recs[msg_id] = Rec(now(), keep)
        self.session.send(self.streams[channel], msg)
        return msg_id

    def execute(self, code: str, keep: bool = False) -> str:
        return self.send("shell", "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True}, keep=keep)

    async def done(self, msg_id: str, timeout: float, idle_grace: float = 1.0) -> float:
        """Time the request finished: its reply and its `idle` (if IOPub lost the idle, as a
        SUB socket does while it reconnects, the reply's time, flagged on the record)."""
        rec = self.recs[msg_id]
        await self.wait(lambda: rec.reply is not None, timeout, "reply")
        if rec.idle_t is None:
            try:
                await self.wait(lambda: rec.idle_t is not None, idle_grace, "idle")
            except TimeoutError:
                rec.idle_missed = True
                return rec.reply_t
        return max(rec.reply_t, rec.idle_t)

    async def run(self, code: str, timeout: float = 30, ok: bool = True) -> Rec:
        msg_id = self.execute(code)
        await self.done(msg_id, timeout)
        rec = self.recs[msg_id]
        if ok and rec.status != "ok":
            raise RuntimeError(f"{self.kind}: {code!r} -> {rec.status} {rec.ename}")
        return rec

    async def kernel_info(self, timeout: float = 60, resend: float = 2.0) -> float:
        """Time of the first kernel_info_reply; the request is re-sent every `resend` s."""
        ids: list[str] = []
        deadline = now() + timeout
        while True:
            ids.append(self.send("shell", "kernel_info_request", {}))
            try:
                await self.wait(lambda: any(self.recs[i].reply for i in ids),
                                min(resend, max(deadline - now(), 0.01)), "kernel_info_reply")
                return min(self.recs[i].reply_t for i in ids if self.recs[i].reply)
            except TimeoutError:
                if now() >= deadline:
                    raise

    async def ready(self, timeout: float = 60) -> None:
        """kernel_info answered and a `1+1` finished with its idle seen on IOPub."""
        deadline = now() + timeout
        await self.kernel_info(timeout)
        while True:
            rec = await self.run("1+1", max(deadline - now(), 1))
            if not rec.idle_missed:
                return
            if now() >= deadline:
                raise TimeoutError(f"{self.kind}: IOPub never delivered an idle")

    def forget(self) -> None:
        self.recs.clear()


def memory(kernel: Kernel) -> dict[str, float]:
    """RSS and USS (bytes) of the kernel's process tree, and of its root process alone."""
    out = {"tree_rss": 0.0, "tree_uss": 0.0, "root_rss": 0.0, "root_uss": 0.0, "procs": 0}
    for i, proc in enumerate(kernel.tree()):
        info = proc.memory_full_info()
        out["tree_rss"] += info.rss
        out["tree_uss"] += info.uss
        out["procs"] += 1
        if i == 0:
            out["root_rss"], out["root_uss"] = float(info.rss), float(info.uss)
    return out
