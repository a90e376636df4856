from __future__ import annotations

from kernelsvc.supervisor.watchdog import InterruptTarget
from kernelsvc.worker import interrupts


def test_the_worker_reads_the_last_target_written(tmp_path, monkeypatch):
    path = tmp_path / "interrupt-target"
    monkeypatch.setattr(interrupts, "_target_file", str(path))
    target = InterruptTarget(str(path))
    target.write("a-long-message-id-0001")
    assert interrupts._take_target() == "a-long-message-id-0001"
    assert interrupts._take_target() is None  # used by one signal only
    target.write("short")  # written in place: no tail of the longer id may remain
    assert interrupts._take_target() == "short"


def test_an_unwritable_target_is_only_a_warning(tmp_path):
    InterruptTarget(str(tmp_path / "missing" / "interrupt-target")).write("m1")
