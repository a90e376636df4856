from __future__ import annotations

from kernelsvc.worker.output_budget import OutputBudget


def test_head_and_tail_are_kept_and_the_middle_counted():
    budget = OutputBudget(10)
    sent = [budget.take("stdout", chunk) for chunk in ("abc", "defgh", "ijklmnop", "qrs")]
    assert "".join(sent) == "abcde"  # the head: half the budget
    pieces = budget.finish()
    assert pieces[0][0] == "stderr" and "9 characters of output omitted" in pieces[0][1]
    assert "".join(text for _, text in pieces[1:]) == "opqrs"  # the tail: the other half
    assert budget.take("stdout", "new request") == "new r"  # finish() reset it


def test_no_limit_passes_everything():
    budget = OutputBudget(None)
    assert budget.take("stdout", "x" * 10_000) == "x" * 10_000
    assert budget.finish() == []


def test_within_the_budget_nothing_is_omitted():
    budget = OutputBudget(100)
    assert budget.take("stdout", "a" * 60) == "a" * 50
    assert budget.finish() == [("stdout", "a" * 10)]
