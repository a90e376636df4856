"""A quick probe for profiling: one kernel started directly, one raw ZMQ client, no manager.

    .venv/bin/python bench/micro.py [--kernel K,K...] [--only rtt,pipe,print,intr] [--n 300]
                                    [--reps 1] [--hold]

K is kernelsvc, ipykernel, or kernelsvc@DIR: kernelsvc with DIR first on PYTHONPATH (a copy of
the tree as DIR/kernelsvc/{supervisor,worker}, to compare a change with what it changes).
Kernels alternate per repetition.

Starts the kernel on a fresh connection file (private IPYTHONDIR), then: `pass` round trips
(request sent -> reply and idle), 500 pipelined `pass` executes, a 20 MB print (every byte
checked) and interrupts of `while True: pass`. Prints the figures and the kernel's pids (with
--hold it waits for Enter before each scenario, so py-spy can attach). The client is
deliberately minimal (a blocking poll loop), so it costs less CPU than the harness's
jupyter_client streams; use harness.py for the figures that count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

now = time.monotonic
PRINT_LINES = 200_000
PRINT_CODE = f"for _i in range({PRINT_LINES}):\n    print(f'{{_i:09d}}' + 'x' * 90)"


class Client:
    def __init__(self, info: dict) -> None:
        self.session = Session(key=info["key"].encode(), signature_scheme=info["signature_scheme"])
        self.ctx = zmq.Context()
        url = f"tcp://{info['ip']}:"
        self.shell = self.ctx.socket(zmq.DEALER)
        self.shell.connect(url + str(info["shell_port"]))
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.connect(url + str(info["control_port"]))
        self.iopub = self.ctx.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(url + str(info["iopub_port"]))
        self.poller = zmq.Poller()
        for s in (self.shell, self.control, self.iopub):
            self.poller.register(s, zmq.POLLIN)
        self.replies: dict[str, tuple[float, dict]] = {}
        self.idle: dict[str, float] = {}
        self.busy: dict[str, float] = {}
        self.stream: dict[str, list[str]] = {}

    def send(self, sock, msg_type: str, content: dict) -> str:
        msg = self.session.msg(msg_type, content)
        self.session.send(sock, msg)
        return msg["header"]["msg_id"]

    def execute(self, code: str) -> str:
        return self.send(self.shell, "execute_request", {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})

    def pump(self, until, timeout: float = 60.0) -> None:
        deadline = now() + timeout
        while not until():
            left = deadline - now()
            if left <= 0:
                raise TimeoutError("no answer")
            for sock, _ in self.poller.poll(left * 1000):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._file(sock, frames)

    def _file(self, sock, frames) -> None:
        t = now()
        _, parts = self.session.feed_identities(frames)
        msg = self.session.deserialize(parts)
        parent = msg["parent_header"].get("msg_id")
        if sock is not self.iopub:
            self.replies[parent] = (t, msg)
            return
        mtype = msg["msg_type"]
        if mtype == "status":
            state = msg["content"]["execution_state"]
            (self.idle if state == "idle" else self.busy)[parent] = t
        elif mtype == "stream":
            self.stream.setdefault(parent, []).append(msg["content"]["text"])

    def done(self, msg_id: str, timeout: float = 60.0) -> float:
        self.pump(lambda: msg_id in self.replies and msg_id in self.idle, timeout)
        return max(self.replies[msg_id][0], self.idle[msg_id])


def start(kind: str, tmp: Path) -> tuple[subprocess.Popen, dict]:
    kind, _, pythonpath = kind.partition("@")
    conn = tmp / f"{kind}-{os.urandom(4).hex()}.json"
    write_connection_file(str(conn), key=os.urandom(16).hex().encode())
    import json
    info = json.loads(conn.read_text())
    if kind == "kernelsvc":
        # As the kernelspec `kernelsvc install` writes runs it.
        argv = [sys.executable, "-m", "kernelsvc.supervisor", "start", "-f", str(conn),
                "--log-level", "warning"]
    else:
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn)]
    env = dict(os.environ, IPYTHONDIR=str(tmp / "ipython"), MPLBACKEND="Agg")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    return proc, info


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", default="kernelsvc")
    parser.add_argument("--only", default="rtt,pipe,print,intr")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kernelsvc-micro-"))
    kinds = args.kernel.split(",")
    results: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    for rep in range(args.reps):
        for kind in kinds if rep % 2 == 0 else kinds[::-1]:
            run(kind, args, tmp, results[kind])
    if args.reps > 1 or len(kinds) > 1:
        print("\nmedians over repetitions:")
        for kind, figures in results.items():
            print(f"  {kind}: " + ", ".join(f"{k} {statistics.median(v):.3f}"
                                           for k, v in figures.items()))
    return 0


def run(kind: str, args, tmp: Path, figures: dict[str, list[float]]) -> None:
    def note(key: str, value: float) -> None:
        figures.setdefault(key, []).append(value)

    t0 = now()
    proc, info = start(kind, tmp)
    c = Client(info)
    try:
        ids = []
        while True:
            ids.append(c.send(c.shell, "kernel_info_request", {}))
            try:
                c.pump(lambda: any(i in c.replies for i in ids), 1.0)
                break
            except TimeoutError:
                continue
        t_info = now() - t0
        while True:  # until IOPub is subscribed (an idle arrives)
            try:
                c.done(c.execute("1+1"), 1.0)
                break
            except TimeoutError:
                continue
        print(f"{kind}: kernel_info {t_info * 1000:.0f} ms, first result "
              f"{(now() - t0) * 1000:.0f} ms")
        note("kernel_info_ms", t_info * 1000)
        note("first_result_ms", (now() - t0) * 1000)
        tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        print(f"pids: {tree}")
        procs = {"root": psutil.Process(proc.pid), "client": psutil.Process()}
        if kind.startswith("kernelsvc"):
            procs["worker"] = psutil.Process(tree[-1])

        def cpu() -> dict[str, float]:
            return {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}

        for what in args.only.split(","):
            if args.hold:
                input(f"{what}: Enter to start ")
            before = cpu()
            if what == "rtt":
                xs = []
                for _ in range(args.n):
                    t = now()
                    xs.append((c.done(c.execute("pass")) - t) * 1000)
                xs.sort()
                print(f"rtt: p50 {statistics.median(xs):.3f} ms, p99 "
                      f"{xs[int(len(xs) * 0.99)]:.3f} ms, min {xs[0]:.3f} ms")
                note("rtt_p50_ms", statistics.median(xs))
                note("rtt_p99_ms", xs[int(len(xs) * 0.99)])
            elif what == "pipe":
                for _ in range(3):
                    t = now()
                    ids = [c.execute("pass") for _ in range(500)]
                    end = c.done(ids[-1])
                    print(f"pipelined: {500 / (end - t):.0f} req/s")
                    note("pipelined_req_s", 500 / (end - t))
            elif what == "printt":  # the print, timed by the cell itself too
                t = now()
                clocks = "_t.perf_counter(), _t.process_time()"
                msg_id = c.execute(f"import time as _t\n_t0, _c0 = {clocks}\n{PRINT_CODE}\n"
                                   f"_t1, _c1 = {clocks}")
                end = c.done(msg_id, 300)
                c.stream.pop(msg_id, None)
                r = c.execute("print(f'{_t1 - _t0:.3f} {_c1 - _c0:.3f}')")
                c.done(r)
                inner, cpu_ = map(float, "".join(c.stream.pop(r)).split())
                print(f"print: {20 / (end - t):.1f} MB/s; in the cell: {inner:.3f} s wall, "
                      f"{cpu_:.3f} s cpu (all threads); end to end {end - t:.3f} s")
                note("print_mb_s", 20 / (end - t))
                note("print_cell_s", inner)
            elif what == "print":
                t = now()
                msg_id = c.execute(PRINT_CODE)
                end = c.done(msg_id, 300)
                text = "".join(c.stream.pop(msg_id, []))
                exact = text == "".join(f"{i:09d}{'x' * 90}\n" for i in range(PRINT_LINES))
                print(f"print: {20 / (end - t):.1f} MB/s, exact {exact}")
                note("print_mb_s", 20 / (end - t))
            elif what == "display":  # a 10 MB display_data, as harness.py's
                c.done(c.execute("import base64, os\n_payload = base64.b64encode("
                                 "os.urandom(7_500_000)).decode()"))
                xs = []
                for _ in range(5):
                    t = now()
                    end = c.done(c.execute("from IPython.display import display\n"
                                           "display({'text/plain': _payload}, raw=True)"))
                    xs.append((end - t) * 1000)
                print(f"display 10 MB: median {statistics.median(xs):.1f} ms")
                note("display_ms", statistics.median(xs))
            elif what == "intr":
                xs = []
                for _ in range(5):
                    msg_id = c.execute("while True:\n    pass")
                    c.pump(lambda: msg_id in c.busy)  # noqa: B023
                    time.sleep(0.2)
                    t = now()
                    c.send(c.control, "interrupt_request", {})
                    c.pump(lambda: msg_id in c.replies)  # noqa: B023
                    xs.append((c.replies[msg_id][0] - t) * 1000)
                    c.done(msg_id)
                print(f"interrupt -> reply: median {statistics.median(xs):.1f} ms")
                note("interrupt_ms", statistics.median(xs))
            after = cpu()
            print("    cpu s: " + ", ".join(f"{k} {after[k] - before[k]:.3f}" for k in after))
            for k in after:
                note(f"{what}_cpu_{k}_s", after[k] - before[k])
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
