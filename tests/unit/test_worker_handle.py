"""The worker handle with a fake OS: signals go to the group, exits are classified."""

from __future__ import annotations

import os
import signal

from kernelsvc.supervisor.timers import Timers
from kernelsvc.supervisor.worker_handle import WorkerHandle


class FakeOs:
    def __init__(self, oom_counts=(0, 0)):
        self.calls = []
        self._oom = list(oom_counts)

    def killpg(self, pgid, sig):
        self.calls.append((pgid, sig))

    def oom_kill_count(self):
        return self._oom.pop(0) if self._oom else None


def attached(fake, pid=4242):
    handle = WorkerHandle(generation=3, os_api=fake)
    read, write = os.pipe()
    os.close(write)
    handle.attach(pid, read)
    return handle


def test_identity_and_group_signals():
    fake = FakeOs()
    handle = attached(fake)
    assert handle.identity == "w3"
    handle.signal_group(signal.SIGINT)
    assert fake.calls == [(4242, signal.SIGINT)]


def test_kill_before_the_pid_is_known_happens_on_attach():
    fake = FakeOs()
    handle = WorkerHandle(generation=1, os_api=fake)
    handle.kill()
    assert fake.calls == []
    read, write = os.pipe()
    os.close(write)
    handle.attach(77, read)
    assert fake.calls == [(77, signal.SIGKILL)]


def test_exit_kills_leftovers_and_classifies():
    fake = FakeOs(oom_counts=(0, 0))
    handle = attached(fake)
    info = handle.exited(-signal.SIGSEGV)
    assert info.describe() == "worker killed by SIGSEGV"
    assert (4242, signal.SIGKILL) in fake.calls  # its process group goes too
    assert not handle.alive


def test_sigkill_while_the_oom_count_rose_is_likely_oom():
    handle = attached(FakeOs(oom_counts=(2, 3)))
    info = handle.exited(-signal.SIGKILL)
    assert info.likely_oom
    assert "likely out of memory" in info.describe()


def test_sigkill_without_oom_evidence_is_just_sigkill():
    handle = attached(FakeOs(oom_counts=(2, 2)))
    assert handle.exited(-signal.SIGKILL).describe() == "worker killed by SIGKILL"


def test_timers_with_a_fake_clock():
    now = [100.0]
    timers = Timers(clock=lambda: now[0])
    fired = []
    timers.call_later(0.5, "stop", lambda: fired.append("stop"))
    timers.call_later(0.2, "boot", lambda: fired.append("boot"))
    assert timers.timeout_ms() == 201
    timers.cancel("boot")
    now[0] = 100.6
    timers.run_due()
    assert fired == ["stop"] and timers.timeout_ms() is None
