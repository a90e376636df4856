from __future__ import annotations

from kernelsvc.supervisor.restart_policy import BootFailures, RestartPolicy


def test_backoff_doubles_up_to_the_cap_and_the_budget_runs_out():
    failures = BootFailures(RestartPolicy(budget=4, initial_delay=0.1, max_delay=0.3))
    delays = []
    for n in range(5):
        failures.record_failure(f"exit {n}")
        delays.append(failures.next_delay())
    assert delays == [0.1, 0.2, 0.3, 0.3, 0.3]
    assert failures.exhausted and failures.last_reason == "exit 4"


def test_success_resets_everything():
    failures = BootFailures(RestartPolicy(budget=2))
    failures.record_failure("boom")
    failures.record_failure("boom")
    assert failures.exhausted
    failures.record_success()
    assert not failures.exhausted and failures.next_delay() == 0.0 and failures.last_reason == ""
