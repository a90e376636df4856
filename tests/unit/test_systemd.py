from __future__ import annotations

import os

from kernelsvc.supervisor.systemd import Notifier


def test_disabled_without_notify_socket():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")  # a no-op, not an error
    notifier.close()


def test_watchdog_interval_is_half_and_only_for_our_pid():
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval == 0.5
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_abstract_socket_address():
    notifier = Notifier({"NOTIFY_SOCKET": "@/org/freedesktop/systemd1/notify"})
    assert notifier.enabled and notifier._address == b"\0/org/freedesktop/systemd1/notify"
    notifier.close()
