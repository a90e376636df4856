"""When to start a worker again after it failed to boot: backoff within a budget.

Pure and clock-free: the loop passes in what happened and asks for the delay.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Boot failures are retried after initial * 2**n seconds (at most ``max_delay``);
    after ``budget`` failures in a row the service is dead, and keeps retrying every
    ``max_delay`` seconds so it recovers when the cause goes away."""

    budget: int = 5
    initial_delay: float = 0.1
    max_delay: float = 5.0


@dataclass
class BootFailures:
    policy: RestartPolicy
    count: int = 0
    last_reason: str = ""

    def record_failure(self, reason: str) -> None:
        self.count += 1
        self.last_reason = reason

    def record_success(self) -> None:
        self.count = 0
        self.last_reason = ""

    @property
    def exhausted(self) -> bool:
        return self.count >= self.policy.budget

    def next_delay(self) -> float:
        if self.count == 0:
            return 0.0
        delay = self.policy.initial_delay * 2 ** (self.count - 1)
        return min(delay, self.policy.max_delay)
