from __future__ import annotations

from structlog.testing import capture_logs

from kernelsvc.supervisor.clients import RejectionLog


def test_rejections_are_rate_limited_and_counted():
    now = [0.0]
    rejections = RejectionLog(per_second=3, clock=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(10):
            rejections.record("shell", "invalid signature")
        now[0] = 1.5
        rejections.record("control", "unsigned message")
    assert [entry["channel"] for entry in logs] == ["shell", "shell", "shell", "control"]
    assert logs[-1]["suppressed_since_last"] == 7
    assert all(entry["event"] == "message_rejected" for entry in logs)
