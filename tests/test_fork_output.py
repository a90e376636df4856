"""Output from forked children (multiprocessing's default on Linux) reaches the cell."""

from __future__ import annotations

from tests.helpers.kernel import execute

FORK = """
import os, sys
pid = os.fork()
if pid == 0:
    print("from the child")
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
print("from the parent")
"""

POOL = """
import multiprocessing as mp
def work(i):
    print(f"task {i}", flush=True)
    return i * i
with mp.get_context("fork").Pool(2) as pool:
    print(sorted(pool.map(work, range(4))))
"""


def stdout_text(msgs):
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


def test_forked_child_prints_reach_the_cell_in_order(kc):
    reply, msgs = execute(kc, FORK)
    assert reply["content"]["status"] == "ok"
    assert stdout_text(msgs) == "from the child\nfrom the parent\n"


def test_multiprocessing_pool_output(kc):
    reply, msgs = execute(kc, POOL, timeout=30)
    assert reply["content"]["status"] == "ok"
    text = stdout_text(msgs)
    assert sorted(line for line in text.splitlines() if line.startswith("task")) == [
        "task 0", "task 1", "task 2", "task 3"]
    assert text.rstrip().endswith("[0, 1, 4, 9]")
