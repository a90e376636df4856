"""The supervisor: one poll loop over the public sockets, the worker link, signals and the pidfd."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
import zmq

from kernelsvc.supervisor import casualties, clients
from kernelsvc.supervisor.config import Config
from kernelsvc.supervisor.connection import ConnectionInfo
from kernelsvc.supervisor.crash_report import boot_failure_reason
from kernelsvc.supervisor.debug import DebugRelay
from kernelsvc.supervisor.frames import recv_frames, send_frames
from kernelsvc.supervisor.outbox import Outbox
from kernelsvc.supervisor.protocol import (
    DELIM,
    Channel,
    ExecutionState,
    SysEvent,
    cell_dir,
)
from kernelsvc.supervisor.relay import ShellQueue
from kernelsvc.supervisor.restart_policy import BootFailures
from kernelsvc.supervisor.signals import SignalPipe
from kernelsvc.supervisor.sockets import PublicSockets
from kernelsvc.supervisor.spawner import Spawner
from kernelsvc.supervisor.states import Lifecycle, WorkerState
from kernelsvc.supervisor.subshells import SubshellTable
from kernelsvc.supervisor.systemd import Notifier
from kernelsvc.supervisor.timers import Timers
from kernelsvc.supervisor.watchdog import Watchdog
from kernelsvc.supervisor.wire import Inbound, make_session, request_metadata
from kernelsvc.supervisor.worker_handle import ExitInfo, WorkerHandle

log = structlog.get_logger("kernelsvc.supervisor")



class Supervisor:
    def __init__(
        self,
        config: Config,
        info: ConnectionInfo,
        ctx: zmq.Context,
        sockets: PublicSockets,
        private_dir: Path,
    ) -> None:
        self.config = config
        self.info = info
        self.ctx = ctx
        self.sockets = sockets
        self.private_dir = private_dir
        self.session = make_session(info)
        self.outbox = Outbox(self.session, sockets.iopub)
        self.queue = ShellQueue()  # the main shell's
        self.subshells = SubshellTable()
        self.debug = DebugRelay()
        self.lifecycle = Lifecycle(on_change=self._log_transition)
        self.signals = SignalPipe()
        self._poller = zmq.Poller()
        self.internal = ctx.socket(zmq.ROUTER)
        self.internal.linger = 0
        self.endpoint = f"ipc://{private_dir}/worker"
        self.internal.bind(self.endpoint)
        self.worker: WorkerHandle | None = None
        self.spawner = Spawner(self._poller, self.endpoint, self.on_worker_exit,
                               self.on_forkserver_exit, preload=config.preload)
        self.generation = 0
        self.boot = BootFailures(config.restart_policy)
        self.worker_kernel_info: dict[str, Any] | None = None
        self.open_comms: set[str] = set()  # comms the worker holds open
        self.restart_requested = False  # the worker is stopping for an in-place restart
        self.queued_at_restart = 0
        self.stop_reason: str | None = None  # set once the service is stopping
        self.kill_error: dict[str, Any] | None = None  # why we killed the worker, if we did
        self.announced: str | None = None  # the running main cell, once its execute_input passed
        self.watchdog = Watchdog(self, config.limits)
        self.rejections = clients.RejectionLog()
        self.systemd = Notifier()
        self.input_pending = False  # an input_request is waiting for the frontend
        self.exit_code: int | None = None
        self.started = time.monotonic()
        self.timers = Timers()
        self._routes = self._routes_in_order()
        self._fd_callbacks: dict[int, Callable[[], None]] = {}
        self._relay_to = {Channel.IOPUB.frame: sockets.iopub, Channel.SHELL.frame: sockets.shell,
                          Channel.STDIN.frame: sockets.stdin,
                          Channel.CONTROL.frame: sockets.control}

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Start the worker and serve until asked to stop; returns the exit code."""
        self.signals.install()
        for sock, _, _ in self._routes:
            self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self.signals.fileno(), zmq.POLLIN)
        self.spawn_worker()
        if self.systemd.watchdog_interval:
            self.timers.call_later(self.systemd.watchdog_interval, "watchdog", self.feed_watchdog)
        try:
            while self.exit_code is None:
                self.poll_once()
        finally:
            self.systemd.close()
            self.spawner.stop()
            self.signals.close()
            self.internal.close(linger=0)
            shutil.rmtree(self.private_dir, ignore_errors=True)
            shutil.rmtree(cell_dir(os.getpid()), ignore_errors=True)  # debugger's dumpCell
        return self.exit_code

    def _routes_in_order(self) -> list[tuple[zmq.Socket, str, Callable[[list[bytes]], None]]]:
        s = self.sockets
        return [
            (self.internal, "worker", self.on_worker_frames),
            (s.shell, "shell", lambda frames: clients.on_shell(self, frames)),
            (s.control, "control", lambda frames: clients.on_control(self, frames)),
            (s.stdin, "stdin", lambda frames: clients.on_stdin(self, frames)),
            (s.iopub, "iopub", lambda frames: clients.on_subscription(self, frames)),
        ]

    def poll_once(self) -> None:
        events = dict(self._poller.poll(self.timers.timeout_ms()))
        if self.signals.fileno() in events:
            self.handle_signals()
        if not self.spawner.fds().isdisjoint(events):
            self.spawner.handle(events)
        for fd, callback in list(self._fd_callbacks.items()):
            if fd in events:
                callback()
        # The worker link first (replies and output drain before new requests start), then
        # shell before control: an interrupt that arrived with the execute it targets finds
        # that execute already running.
        for sock, name, handle in self._routes:
            if sock in events:
                self.drain(sock, name, handle)
        self.timers.run_due()

    def watch_fd(self, fd: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` from the loop whenever ``fd`` is readable (e.g. a gateway port)."""
        self._fd_callbacks[fd] = callback
        self._poller.register(fd, zmq.POLLIN)

    @staticmethod
    def drain(
        sock: zmq.Socket, name: str, handle: Callable[[list[bytes]], None], limit: int = 256
    ) -> None:
        """Handle what is ready on ``sock``, bounded so one busy socket cannot starve the rest."""
        for _ in range(limit):
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                return
            try:
                handle(frames)
            except Exception as exc:  # one bad message must never take the service down
                log.error("message_handling_failed", channel=name, error=type(exc).__name__)

    # ------------------------------------------------------------------ the worker

    def spawn_worker(self) -> None:
        self.generation += 1
        self.lifecycle.to(WorkerState.STARTING)
        self.outbox.status(ExecutionState.STARTING)
        self.worker = self.spawner.spawn(self.generation)
        self.timers.call_later(self.config.worker_boot_timeout, "boot", self.on_boot_timeout)
        log.info("worker_requested", generation=self.generation)

    def on_boot_timeout(self) -> None:
        if self.lifecycle.is_(WorkerState.STARTING) and self.worker:
            log.error("worker_boot_timeout", worker_pid=self.worker.pid, generation=self.generation)
            if self.worker.pid is None:
                self.spawner.stop()  # the fork server itself is stuck
            self.worker.kill()

    @property
    def worker_identity(self) -> bytes:
        return self.worker.identity.encode() if self.worker else b""

    def send_to_worker(self, channel: Channel, frames: list[bytes]) -> None:
        send_frames(self.internal, [self.worker_identity, channel.frame, *frames])

    def send_sys(self, event: SysEvent, **fields: Any) -> None:
        self.send_to_worker(Channel.SYS, [json.dumps({"event": event, **fields}).encode()])

    def on_worker_exit(self, worker: WorkerHandle, exit_info: ExitInfo) -> None:
        """The reaper collected our worker: answer for it, then replace it (or stop)."""
        if worker is not self.worker:
            return
        # Its last words first: output and execute_input it sent before dying are queued
        # on our link, and belong before the error we are about to publish.
        self.drain(self.internal, "worker", self.on_worker_frames, limit=100_000)
        if exit_info.signal == signal.SIGKILL and self.kill_error is None \
                and self.watchdog.near_limit():
            exit_info = replace(exit_info, likely_oom=True)  # not ours: the OOM killer's
        was = self.lifecycle.state
        self.lifecycle.to(WorkerState.DEAD)
        self.timers.cancel("boot")
        self.timers.cancel("stop")
        log.info(
            "worker_exited",
            worker_pid=self.worker.pid,
            generation=self.generation,
            exit_code=exit_info.code,
            exit_signal=exit_info.signal_name,
            state_before=was,
            likely_oom=exit_info.likely_oom,
        )
        if self.exit_code is None and was is WorkerState.STOPPING and self.stop_reason:
            self.finish_stop()
            return
        self.on_worker_death(was, exit_info)

    def on_worker_death(self, was: WorkerState, exit_info: ExitInfo) -> None:
        """Answer what was in flight, then bring up a fresh worker."""
        self.watchdog.on_done()
        replied = self.queue.replied
        running = self.queue.take_running()
        self.input_pending = False  # its input_request is cancelled: a late reply is dropped
        casualties.close_open_comms(self, running)
        if running is not None:
            error = casualties.death_error(self, running, exit_info)
            casualties.answer_dead_request(self, running, error, replied)
        casualties.answer_dead_subshells(self, exit_info)
        self.debug.on_worker_death(self, "the worker stopped (it was restarted or died)")
        self.kill_error = None
        if self.restart_requested:  # a restart drops the cells queued before it
            casualties.abort_queued_executes(self, among_first=self.queued_at_restart)
            self.restart_requested = False
        if was is WorkerState.STARTING:
            self.on_boot_failure(exit_info)
            return
        # No IOPub "restarting" here: JupyterLab reads it as the kernel itself dying (a
        # "kernel died" dialog, dropped requests and comms); "starting" then "idle" says enough.
        self.spawn_worker()

    def on_forkserver_exit(self, exit_info: ExitInfo, stderr_lines: list[str]) -> None:
        log.warning("forkserver_exited", exit_code=exit_info.code,
                    exit_signal=exit_info.signal_name)
        if self.stop_reason is not None:
            return
        worker = self.worker
        if worker is not None and worker.pid is None and self.lifecycle.is_(WorkerState.STARTING):
            # The worker was never forked: the fork server could not start (a broken import).
            self.lifecycle.to(WorkerState.DEAD)
            self.timers.cancel("boot")
            self.on_boot_failure(exit_info, stderr_lines)

    def on_boot_failure(self, exit_info: ExitInfo, stderr_lines: list[str] | None = None) -> None:
        """Retry with backoff; past the budget, a visible dead state that keeps retrying."""
        lines = self.worker.stderr_lines() if stderr_lines is None else stderr_lines
        self.boot.record_failure(boot_failure_reason(exit_info, lines))
        log.error("worker_boot_failed", attempt=self.boot.count, exit_code=exit_info.code,
                  exit_signal=exit_info.signal_name)
        if self.boot.exhausted:
            if not self.lifecycle.is_(WorkerState.FATAL):
                self.lifecycle.to(WorkerState.FATAL)
                self.outbox.status(ExecutionState.DEAD)
                log.error("service_dead", attempts=self.boot.count)
            casualties.fail_everything(self, self.boot.last_reason)
        else:
            self.lifecycle.to(WorkerState.BACKOFF)
        self.timers.call_later(self.boot.next_delay(), "respawn", self.spawn_worker)

    def restart_in_place(self) -> None:
        """shutdown_request(restart=True): a fresh worker behind the same sockets, same key,
        same supervisor; the running request is answered, queued executes are aborted."""
        log.info("restart_requested", generation=self.generation, state=str(self.lifecycle.state))
        if self.lifecycle.is_(WorkerState.BACKOFF, WorkerState.FATAL):
            self.timers.cancel("respawn")
            self.spawn_worker()
            return
        if not self.lifecycle.is_(WorkerState.STARTING, WorkerState.IDLE, WorkerState.BUSY):
            return  # already on its way out
        self.restart_requested = True
        self.queued_at_restart = self.queue.queued  # what a restart drops; not later ones
        idle = self.lifecycle.is_(WorkerState.IDLE)
        self.lifecycle.to(WorkerState.STOPPING)
        if idle:  # it can save its history; a busy or starting one cannot listen
            self.send_sys(SysEvent.STOP)
            self.timers.call_later(self.config.worker_stop_timeout, "stop",
                                   self.kill_stopping_worker)
        else:
            self.worker.kill()

    def kill_worker_for(self, error: dict[str, Any]) -> None:
        """Kill the worker on purpose (a limit, an unanswered interrupt): the running request
        is answered through the crash path with ``error``."""
        self.kill_error = error
        self.worker.kill()

    # ------------------------------------------------------------------ the worker link

    def on_worker_frames(self, frames: list[bytes]) -> None:
        if len(frames) < 3 or frames[0] != self.worker_identity:
            return  # a previous generation's last words, or junk
        channel, body = frames[1], frames[2:]
        if channel == Channel.SYS.frame:
            event = json.loads(frames[2])
            if isinstance(event, dict):
                self.on_sys(event)
            return
        if channel == Channel.SHELL.frame:
            queue = self.shell_queue(frames[2].decode())
            if queue is not None:
                queue.note_reply()  # one request runs at a time per shell: this is its reply
            body = frames[3:]  # without the subshell frame
        elif channel == Channel.IOPUB.frame and frames[2].endswith(b".execute_input"):
            self.note_announced(frames)
        elif channel == Channel.STDIN.frame:
            self.input_pending = True
        elif channel == Channel.CONTROL.frame and not self.debug.on_reply(self, body):
            return
        sock = self._relay_to.get(channel)
        if sock is not None:
            send_frames(sock, body)  # relayed as the worker signed it

    def note_announced(self, frames: list[bytes]) -> None:
        """The main shell's running cell was announced to the clients (a subshell's
        execute_input does not count); if the worker dies in it, its number is in the
        running-cell file (casualties.running_count)."""
        running = self.queue.running
        try:
            delimiter = frames.index(DELIM, 2)  # [id, channel, topic, DELIM, sig, h, p, m, c]
            parent = self.session.unpack(frames[delimiter + 3])
        except (ValueError, TypeError, IndexError):
            return
        if running is not None and parent.get("msg_id") == running.msg_id:
            self.announced = running.msg_id

    def on_sys(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if self.lifecycle.is_(WorkerState.STOPPING):
            if kind == SysEvent.DONE:  # nothing else it says changes that it is stopping
                self.note_done_while_stopping(event)
            return
        if kind == SysEvent.HELLO:
            self.send_sys(SysEvent.CONFIG, **self.worker_config())
        elif kind == SysEvent.READY:
            self.on_worker_ready(event)
        elif kind == SysEvent.DONE:
            self.on_request_done(event)
        elif kind == SysEvent.COMM_OPENED:
            self.open_comms.add(str(event.get("comm_id")))
        elif kind == SysEvent.COMM_CLOSED:
            self.open_comms.discard(str(event.get("comm_id")))

    def worker_config(self) -> dict[str, Any]:
        return {
            "key": self.info.key.decode(),
            "signature_scheme": self.info.signature_scheme,
            "session": self.session.session,
            "connection_info": self.info.to_dict(),
            "connection_file": str(self.config.connection_file.resolve()),
            "generation": self.generation,
            "max_output_bytes": self.config.max_output_bytes,
        }

    def on_worker_ready(self, event: dict[str, Any]) -> None:
        assert self.worker is not None
        self.timers.cancel("boot")
        if self.boot.count:
            log.info("service_recovered", after_failures=self.boot.count)
        self.boot.record_success()
        self.worker_kernel_info = event.get("kernel_info", {})
        self.lifecycle.to(WorkerState.IDLE)
        log.info(
            "worker_started",
            worker_pid=self.worker.pid,
            generation=self.generation,
            startup_ms=round(event.get("startup_ms", 0.0), 1),
        )
        self.outbox.status(ExecutionState.IDLE)
        self.systemd.ready(f"serving; worker {self.worker.pid} ready")
        self.watchdog.start_sampling()
        self.debug.on_worker_ready(self)
        self.dispatch_next()

    def shell_queue(self, subshell_id: str | None) -> ShellQueue | None:
        """The main shell's queue, or a subshell's (a deleted one still finishing too)."""
        return self.subshells.find(subshell_id) if subshell_id else self.queue

    def on_request_done(self, event: dict[str, Any]) -> None:
        subshell_id = event.get("subshell_id") or None
        queue = self.shell_queue(subshell_id)
        if queue is None:
            return
        # After a stop_on_error failure only what was queued when the error reply went out
        # is aborted: a request sent after the client saw the error is a new decision.
        done, aborted = queue.finish(event.get("msg_id", ""), bool(event.get("abort_queue")))
        if done is None:
            return
        if subshell_id is None:
            self.watchdog.on_done()
            if queue.running is not None:  # the request sent ahead has started
                self.on_main_started(queue.running)
        else:
            self.subshells.release(subshell_id)
        if self.lifecycle.is_(WorkerState.BUSY) and not self.any_running():
            self.lifecycle.to(WorkerState.IDLE)
        casualties.answer_aborted(self, aborted)
        self.dispatch_next()

    def note_done_while_stopping(self, event: dict[str, Any]) -> None:
        """Nothing starts any more, but which request runs stays known (one sent ahead may
        have started), so that stopping answers each request once."""
        queue = self.shell_queue(event.get("subshell_id") or None)
        if queue is None:
            return
        ahead = queue.ahead
        done, _ = queue.finish(event.get("msg_id", ""))
        if done is not None and ahead is not None and queue.running is ahead \
                and self.restart_requested:
            self.queued_at_restart -= 1  # it started: not among the queued a restart drops

    def any_running(self) -> bool:
        return self.queue.running is not None or self.subshells.busy()

    def worker_serving(self) -> bool:
        return self.worker is not None and self.lifecycle.is_(WorkerState.IDLE, WorkerState.BUSY)

    def dispatch_next(self) -> None:
        """Start the next request of every shell that has nothing running (subshells run
        concurrently in the worker, each in its own thread), and send the main shell's next
        request ahead, so the worker starts it as soon as the running one ends."""
        if not self.worker_serving():
            return
        request = self.queue.start_next()
        if request is not None:
            self.send_request(request, "")
            self.on_main_started(request)
        request = self.queue.prefetch_next()
        if request is not None:
            self.send_request(request, "", after=self.queue.running)
        for subshell_id, queue in self.subshells.items():
            request = queue.start_next()
            if request is not None:
                self.send_request(request, subshell_id)

    def on_main_started(self, request: Inbound) -> None:
        self.announced = None
        self.watchdog.on_dispatch(request, request_metadata(self.session, request))

    def send_request(self, request: Inbound, subshell_id: str,
                     after: Inbound | None = None) -> None:
        """To the worker, with the subshell it is for and the request it was sent behind
        (the worker skips an execute sent behind one that failed with stop_on_error)."""
        if self.lifecycle.is_(WorkerState.IDLE):
            self.lifecycle.to(WorkerState.BUSY)
        behind = after.msg_id.encode() if after is not None else b""
        self.send_to_worker(Channel.SHELL, [subshell_id.encode(), behind, *request.wire()])

    # ------------------------------------------------------------------ clients

    # ------------------------------------------------------------------ stopping

    def begin_stop(self, reason: str, restart: bool = False) -> None:
        """Stop the worker (politely, then SIGKILL), then leave the loop with status 0."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        log.info("stop_requested", reason=reason, restart=restart)
        self.systemd.stopping()
        no_worker = (WorkerState.DEAD, WorkerState.BACKOFF, WorkerState.FATAL)
        unborn = self.lifecycle.is_(WorkerState.STARTING) and self.worker.pid is None
        if self.worker is None or self.lifecycle.is_(*no_worker) or unborn:
            self.finish_stop()  # a worker forked after this finds its parent gone and exits
            return
        starting = self.lifecycle.is_(WorkerState.STARTING)
        self.lifecycle.to(WorkerState.STOPPING)
        if starting:
            self.worker.kill()  # nothing to save yet, and it may not be listening
            return
        self.send_sys(SysEvent.STOP)
        self.timers.call_later(self.config.worker_stop_timeout, "stop", self.kill_stopping_worker)

    def kill_stopping_worker(self) -> None:
        if self.worker and self.lifecycle.is_(WorkerState.STOPPING):
            log.warning("worker_stop_timeout", worker_pid=self.worker.pid)
            self.worker.kill()

    def finish_stop(self) -> None:
        """Nothing left unanswered: what each shell was running, then the queues."""
        evalue = "the kernel was shut down"
        error = {"ename": "KernelShutdown", "evalue": evalue,
                 "traceback": [f"KernelShutdown: {evalue}"]}
        casualties.answer_running(self, self.queue, error)
        for _, queue in self.subshells.items():
            casualties.answer_running(self, queue, error, main_shell=False)
        casualties.fail_everything(self, "the kernel is shutting down")
        self.exit_code = 0

    def handle_signals(self) -> None:
        for sig in self.signals.drain():
            if sig == signal.SIGCHLD:
                self.spawner.reap()
                continue
            if sig == signal.SIGINT and not self.ctrl_c_stops():
                self.watchdog.interrupt("signal")  # signal mode, as jupyter_client sends it
            else:
                self.begin_stop(sig.name)
            log.info("signal_received", signal=sig.name)  # after acting: logging takes ~0.1 ms

    def ctrl_c_stops(self) -> bool:
        """Ctrl-C at a terminal with no cell running stops the service (a manager's
        SIGINT never comes from a terminal: jupyter_client gives kernels a pipe as stdin)."""
        return not self.lifecycle.is_(WorkerState.BUSY) and sys.stdin is not None \
            and sys.stdin.isatty()

    def feed_watchdog(self) -> None:
        """WATCHDOG=1 from the loop itself: if the loop hangs, systemd restarts us."""
        self.systemd.watchdog()
        self.timers.call_later(self.systemd.watchdog_interval, "watchdog", self.feed_watchdog)

    def _log_transition(self, old: WorkerState, new: WorkerState) -> None:
        log.debug("worker_state_changed", old=str(old), new=str(new), generation=self.generation)
        if new in (WorkerState.STARTING, WorkerState.BACKOFF, WorkerState.FATAL) or \
                (old is WorkerState.STARTING and new is WorkerState.IDLE):
            self.systemd.status(f"worker {new} (generation {self.generation})")
