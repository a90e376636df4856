"""The scenarios: each runs once against one kernel and returns its sample.

A sample is a number (ms, requests/s, MB/s) or a dict; `None` means "never" (a bounded wait
ran out where the kernel is expected never to answer). An exception is a FAIL for that run.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels import Kernel, Procs, memory, now

PRINT_LINES = 200_000  # 100-character lines: 20 MB
PRINT_CODE = f"for _i in range({PRINT_LINES}):\n    print(f'{{_i:09d}}' + 'x' * 90)"
DISPLAY_BYTES = 10_000_000
DISPLAY_SETUP = (
    "import base64, hashlib, os\n"
    f"_bench_payload = base64.b64encode(os.urandom({DISPLAY_BYTES * 3 // 4})).decode()\n"
    "hashlib.sha256(_bench_payload.encode()).hexdigest()"
)
DISPLAY_CODE = ("from IPython.display import display\n"
                "display({'text/plain': _bench_payload}, raw=True)")
SIGIGN_CODE = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"


def expected_print() -> str:
    return "".join(f"{i:09d}{'x' * 90}\n" for i in range(PRINT_LINES))


@dataclass
class Ctx:
    tmp: Path
    spec_dirs: dict[str, str]
    procs: Procs
    log: Any
    quick: bool
    never_bound: float  # how long to wait for what one kernel is expected never to do
    settle: float = 1.0
    expected: str = field(default="", repr=False)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def launch(kind: str, ctx: Ctx) -> dict:
    """Launch -> kernel_info_reply, -> first execute result; then idle memory."""
    k, t0 = await Kernel.launch(kind, ctx.spec_dirs, ctx.procs, ctx.log)
    try:
        started = now()
        t_info = await k.kernel_info(60)
        msg_id = k.execute("1+1")
        await k.done(msg_id, 60)
        rec = k.recs[msg_id]
        if rec.status != "ok":
            raise RuntimeError(f"1+1 -> {rec.status} {rec.ename}")
        await asyncio.sleep(ctx.settle)
        k.track()
        return {"kernel_info_ms": ms(t_info - t0),
                "first_result_ms": ms((rec.result_t or rec.reply_t) - t0),
                "result_on_iopub": rec.result_t is not None,
                "start_kernel_ms": ms(started - t0),
                "memory": memory(k)}
    finally:
        await k.close()


async def round_trips(k: Kernel, ctx: Ctx, n: int = 300) -> list[float]:
    """`pass`, sequentially: request sent -> reply and idle."""
    out = []
    for _ in range(n):
        t0 = now()
        msg_id = k.execute("pass")
        out.append(ms(await k.done(msg_id, 10) - t0))
    k.forget()
    return out


async def pipelined(k: Kernel, ctx: Ctx, n: int = 500) -> float:
    """n `pass` executes sent at once; requests per second to the last reply and idle."""
    t0 = now()
    ids = [k.execute("pass") for _ in range(n)]
    end = await k.done(ids[-1], 120)
    await k.wait(lambda: all(k.recs[i].reply for i in ids), 5, "all replies")
    bad = [k.recs[i].status for i in ids if k.recs[i].status != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} replies not ok: {bad[:3]}")
    k.forget()
    return round(n / (end - t0), 1)


async def print_20mb(k: Kernel, ctx: Ctx) -> dict:
    """20 MB printed in 100-character lines; MB/s to reply and idle; every byte checked."""
    t0 = now()
    msg_id = k.execute(PRINT_CODE, keep=True)
    end = await k.done(msg_id, 300)
    rec = k.recs[msg_id]
    total = len(ctx.expected)
    at_done = rec.stream_bytes
    try:
        await k.wait(lambda: rec.stream_bytes >= total, 2, "the rest of the output")
    except TimeoutError:
        pass
    text = "".join(rec.chunks)
    out = {"mb_s": round(total / 1e6 / (end - t0), 2), "seconds": round(end - t0, 3),
           "bytes": len(text), "messages": rec.stream_msgs, "exact": text == ctx.expected,
           "late_bytes": rec.stream_bytes - at_done}  # arrived after the idle
    del text
    k.forget()
    if rec.status != "ok":
        raise RuntimeError(f"print -> {rec.status} {rec.ename}")
    return out


async def display_10mb(k: Kernel, ctx: Ctx) -> float:
    """A 10 MB display_data: request sent -> display received, reply and idle; checked."""
    setup = await k.run(DISPLAY_SETUP, 60)
    digest = setup.result["content"]["data"]["text/plain"].strip("'")
    t0 = now()
    msg_id = k.execute(DISPLAY_CODE)
    end = await k.done(msg_id, 120)
    rec = k.recs[msg_id]
    if rec.status != "ok" or not rec.displays:
        raise RuntimeError(f"display -> {rec.status} {rec.ename}, {len(rec.displays)} displays")
    data = rec.displays[0]["content"]["data"]["text/plain"]
    if len(data) != DISPLAY_BYTES or hashlib.sha256(data.encode()).hexdigest() != digest:
        raise RuntimeError(f"display payload damaged ({len(data)} bytes)")
    k.forget()
    await k.run("del _bench_payload")
    return ms(end - t0)


async def interrupt(k: Kernel, ctx: Ctx, mode: str) -> float:
    """`while True: pass`, interrupted by message (control) or signal (km.interrupt_kernel()
    with the kernelspec's signal mode): interrupt sent -> execute_reply (KeyboardInterrupt)."""
    msg_id = k.execute("while True:\n    pass")
    rec = k.recs[msg_id]
    await k.wait(lambda: rec.busy_t is not None, 30, "busy")
    await asyncio.sleep(0.3)
    t0 = now()
    if mode == "message":
        k.send("control", "interrupt_request", {})
    else:
        await k.km.interrupt_kernel()
    await k.wait(lambda: rec.reply is not None, 10, "execute_reply after the interrupt")
    if rec.ename != "KeyboardInterrupt":
        raise RuntimeError(f"interrupted cell -> {rec.status} {rec.ename}")
    took = ms(rec.reply_t - t0)
    await k.done(msg_id, 5)
    k.forget()
    return took


async def sigint_ignored(k: Kernel, ctx: Ctx) -> float | None:
    """A cell that ignores SIGINT, interrupted (signal mode, as Jupyter does): interrupt
    sent -> its reply -> a `1+1` sent then finished. None: no reply within the bound (the
    kernel is then restarted with km.restart_kernel(now=True) so the run can go on)."""
    msg_id = k.execute(SIGIGN_CODE)
    rec = k.recs[msg_id]
    await k.wait(lambda: rec.busy_t is not None, 30, "busy")
    await asyncio.sleep(0.3)
    t0 = now()
    await k.km.interrupt_kernel()
    try:
        await k.wait(lambda: rec.reply is not None, ctx.never_bound, "reply")
    except TimeoutError:
        await asyncio.wait_for(k.km.restart_kernel(now=True), 60)
        k.track()
        await k.ready(60)
        k.forget()
        return None
    probe = k.execute("1+1")
    end = await k.done(probe, 30)
    if k.recs[probe].status != "ok":
        raise RuntimeError(f"1+1 after the escalation -> {k.recs[probe].status}")
    k.track()
    k.forget()
    return ms(end - t0)


async def restart(k: Kernel, ctx: Ctx) -> dict:
    """km.restart_kernel() -> a `1+1` (sent when it returns) finished, on a fresh namespace."""
    await k.run("x = 1")
    pid = k.pid
    t0 = now()
    await asyncio.wait_for(k.km.restart_kernel(), 60)
    t_call = now()
    msg_id = k.execute("1+1")
    end = await k.done(msg_id, 60)
    rec = k.recs[msg_id]
    if rec.status != "ok" or rec.reply["content"].get("execution_count") != 1:
        raise RuntimeError(f"1+1 after restart -> {rec.status}, "
                           f"count {rec.reply['content'].get('execution_count')}")
    k.track()
    out = {"ms": ms(end - t0), "restart_kernel_ms": ms(t_call - t0),
           "same_pid": k.pid == pid, "idle_missed": rec.idle_missed}
    k.forget()
    return out


CRASH_CODE = {
    "exit": "os._exit(1)",
    "segv": "ctypes.string_at(0)",
}


async def crash(k: Kernel, ctx: Ctx, how: str) -> dict:
    """The cell writes CLOCK_MONOTONIC to a file, then dies. Crash -> the in-flight
    request's reply (None: never, within the bound); crash -> a `1+1` finished. The `1+1`
    is sent as soon as the crash is seen, again every 0.25 s and at once after any reply
    that is not ok, so a kernel is usable as soon as any one of them succeeds."""
    stamp = ctx.tmp / f"crash-{k.kind}.txt"
    stamp.unlink(missing_ok=True)
    k.calm_restarter()
    pid = k.pid
    code = ("import ctypes, os, time\n"
            f"with open({str(stamp)!r}, 'w') as _f:\n"
            "    _f.write(repr(time.monotonic()))\n"
            f"{CRASH_CODE[how]}\n")
    msg_id = k.execute(code)
    rec = k.recs[msg_id]
    deadline = now() + 30
    crashed = None
    while crashed is None:
        try:
            crashed = float(stamp.read_text())
        except (OSError, ValueError):
            if now() > deadline:
                raise TimeoutError("the crashing cell never ran") from None
            await asyncio.sleep(0.001)
    probes: list[str] = []
    answered: set[str] = set()
    good = None
    resend = 0.25
    last = 0.0
    limit = crashed + 60
    while good is None:
        if now() > limit:
            raise TimeoutError("no 1+1 succeeded within 60 s of the crash")
        if len(answered) == len(probes) or now() - last >= resend:
            probes.append(k.execute("1+1"))
            last = now()
        try:
            await k.wait(lambda: any(k.recs[p].reply for p in probes if p not in answered),
                         max(0.001, last + resend - now()), "probe reply")
        except TimeoutError:
            continue
        for p in probes:
            if p not in answered and k.recs[p].reply:
                answered.add(p)
                if k.recs[p].status == "ok" and good is None:
                    good = p
    usable = await k.done(good, 30)
    try:
        await k.wait(lambda: rec.reply is not None, max(0.0, crashed + ctx.never_bound - now()),
                     "in-flight reply")
    except TimeoutError:
        pass
    restarting = [t for t, _, mtype, state in k.orphans
                  if t > crashed and mtype == "status" and state == "restarting"]
    try:  # let the leftover probes finish before the next scenario
        await k.wait(lambda: all(k.recs[p].reply for p in probes), 2, "probes")
    except TimeoutError:
        pass
    k.track()
    out = {"reply_ms": ms(rec.reply_t - crashed) if rec.reply else None,
           "usable_ms": ms(usable - crashed),
           "ename": rec.ename, "evalue": (rec.reply or {}).get("content", {}).get("evalue"),
           "restarting_ms": ms(restarting[0] - crashed) if restarting else None,
           "probes": len(probes), "same_pid": k.pid == pid}
    k.forget()
    return out
