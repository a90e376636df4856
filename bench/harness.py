"""kernelsvc and ipykernel side by side, launched as Jupyter Server launches them.

    .venv/bin/python bench/harness.py [--quick] [--out bench/results]

Both kernels run under jupyter_client's AsyncIOLoopKernelManager (autorestart on), from
kernelspecs in a temporary directory (kernelsvc's written by `kernelsvc install --prefix`),
with private IPYTHONDIR and JUPYTER_* directories. Every scenario runs for both kernels,
alternating which goes first per repetition. Writes results.json, results.md and plot.png.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from importlib.metadata import version
from pathlib import Path

import psutil
import report
import scenarios as sc
from kernels import KINDS, Kernel, Procs, install_specs, isolate_env

# scenario: (repetitions quick, default, per-run timeout s)
PLAN = {
    "launch": (3, 15, 120),
    "round_trips": (1, 4, 120),
    "pipelined": (2, 6, 120),
    "print_20mb": (1, 4, 300),
    "display_10mb": (2, 8, 120),
    "interrupt_message": (3, 15, 60),
    "interrupt_signal": (3, 15, 60),
    "sigint_ignored": (1, 3, 120),
    "restart": (4, 15, 120),
    "crash_exit": (2, 6, 120),
    "crash_segv": (2, 6, 120),
}


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def order(rep: int) -> tuple[str, ...]:
    return KINDS if rep % 2 == 0 else KINDS[::-1]


class Bench:
    def __init__(self, ctx: sc.Ctx) -> None:
        self.ctx = ctx
        self.kernels: dict[str, Kernel] = {}
        self.runs: dict[str, dict[str, dict]] = {}
        self.load: dict[str, float] = {}  # 1-minute load average as each scenario began

    def record(self, scenario: str, kind: str, sample=None, error: str | None = None) -> None:
        run = self.runs.setdefault(scenario, {}).setdefault(
            kind, {"samples": [], "failures": []})
        if error is None:
            run["samples"].append(sample)
        else:
            run["failures"].append(error)

    async def start(self, kind: str) -> Kernel:
        k, _ = await Kernel.launch(kind, self.ctx.spec_dirs, self.ctx.procs, self.ctx.log)
        await k.ready(60)
        k.track()
        self.kernels[kind] = k
        return k

    async def recover(self, kind: str) -> None:
        """After a FAIL: usable again, or restarted, or relaunched."""
        k = self.kernels[kind]
        k.forget()
        try:
            await k.ready(10)
            return
        except Exception:
            pass
        log(f"  {kind}: not answering; restart_kernel(now=True)")
        try:
            await asyncio.wait_for(k.km.restart_kernel(now=True), 60)
            k.track()
            await k.ready(60)
            return
        except Exception:
            pass
        log(f"  {kind}: relaunching")
        await k.close()
        await self.start(kind)

    async def once(self, scenario: str, kind: str, timeout: float) -> None:
        k = self.kernels.get(kind)
        fn = {
            "launch": lambda: sc.launch(kind, self.ctx),
            "round_trips": lambda: sc.round_trips(k, self.ctx),
            "pipelined": lambda: sc.pipelined(k, self.ctx),
            "print_20mb": lambda: sc.print_20mb(k, self.ctx),
            "display_10mb": lambda: sc.display_10mb(k, self.ctx),
            "interrupt_message": lambda: sc.interrupt(k, self.ctx, "message"),
            "interrupt_signal": lambda: sc.interrupt(k, self.ctx, "signal"),
            "sigint_ignored": lambda: sc.sigint_ignored(k, self.ctx),
            "restart": lambda: sc.restart(k, self.ctx),
            "crash_exit": lambda: sc.crash(k, self.ctx, "exit"),
            "crash_segv": lambda: sc.crash(k, self.ctx, "segv"),
        }[scenario]
        try:
            sample = await asyncio.wait_for(fn(), timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc or f'no result within {timeout} s'}"
            log(f"  FAIL {scenario} {kind}: {error}")
            self.ctx.log.write(f"\n--- FAIL {scenario} {kind}\n{traceback.format_exc()}\n")
            self.ctx.log.flush()
            self.record(scenario, kind, error=error)
            if scenario != "launch":
                try:
                    await asyncio.wait_for(self.recover(kind), 180)
                except Exception as exc2:
                    log(f"  {kind}: could not recover: {exc2!r}")
            return
        self.record(scenario, kind, sample)
        log(f"  {scenario} {kind}: {brief(sample)}")

    async def run(self, quick: bool, only: set[str] | None = None) -> None:
        for kind in KINDS:  # warm the page cache; not measured
            await sc.launch(kind, self.ctx)
        for scenario, (reps_quick, reps, timeout) in PLAN.items():
            if only is not None and scenario not in only:
                continue
            if scenario != "launch" and not self.kernels:
                for kind in KINDS:
                    await self.start(kind)
            if scenario == "print_20mb":
                self.ctx.expected = sc.expected_print()
            self.load[scenario] = round(os.getloadavg()[0], 2)
            log(f"{scenario} (load average {self.load[scenario]})")
            for rep in range(reps_quick if quick else reps):
                for kind in order(rep):
                    await self.once(scenario, kind, timeout)

    async def close(self) -> list[int]:
        for k in self.kernels.values():
            k.track()
            await k.close()
        return self.ctx.procs.kill_all()


def brief(sample) -> str:
    if isinstance(sample, list):
        xs = sorted(sample)
        return f"n={len(xs)} p50 {xs[len(xs) // 2]:.2f} max {xs[-1]:.2f}"
    if isinstance(sample, dict):
        return ", ".join(f"{k}={v}" for k, v in sample.items() if k != "memory")
    return str(sample)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "physical_cpus": psutil.cpu_count(logical=False),
            "memory_gib": psutil.virtual_memory().total / 2**30,
            "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


async def amain(args: argparse.Namespace) -> int:
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kernelsvc-bench-"))
    isolate_env(tmp)
    spec_dirs = install_specs(tmp)
    never_bound = 6.0 if args.quick else 10.0
    with open(tmp / "kernels.log", "w") as kernel_log:
        ctx = sc.Ctx(tmp=tmp, spec_dirs=spec_dirs, procs=Procs(), log=kernel_log,
                     quick=args.quick, never_bound=never_bound)
        bench = Bench(ctx)
        try:
            await bench.run(args.quick, set(args.only.split(",")) if args.only else None)
        finally:
            killed = await bench.close()
            log(f"killed {len(killed)} leftover processes by pid: {killed}; "
                f"{len(ctx.procs.seen)} tracked in all")
    grace = 3.0  # kernelsvc's default --interrupt-timeout, what the kernelspec runs with
    figures = report.build(bench.runs, grace, never_bound)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "mode": ("quick" if args.quick else "default") + (f" (only {args.only})"
                                                          if args.only else ""),
        "machine": machine(),
        "versions": {p: version(p) for p in ("kernelsvc", "ipykernel", "jupyter_client",
                                             "pyzmq", "ipython", "tornado")},
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "load_by_scenario": bench.load,
        "duration_s": time.monotonic() - started,
        "never_bound_s": never_bound,
        "interrupt_timeout_s": grace,
        "repetitions": {s: (q if args.quick else d) for s, (q, d, _) in PLAN.items()},
        "notes": [
            "times use CLOCK_MONOTONIC; a request is done at its reply and its IOPub idle",
            "launch: from before km.start_kernel() (fresh manager each time, one warm-up "
            "launch per kernel first); memory: that fresh kernel's process tree after 1+1 "
            "and 1 s idle (psutil memory_full_info)",
            "crash: the cell writes CLOCK_MONOTONIC to a file just before dying; `1+1` probes "
            "are sent from then on (every 0.25 s and after any reply that is not ok); "
            "ipykernel is brought back by the manager's KernelRestarter (polls every "
            "3 s, as in Jupyter Server), treated as past its stable_start_time",
            f"never: no reply within {never_bound:g} s (the kernel is then restarted with "
            "km.restart_kernel(now=True))",
            "interrupt (signal): km.interrupt_kernel(), SIGINT to the kernel's process group "
            "(kernelsvc: the supervisor's)",
            "the machine was shared with other jobs while this ran: see the load average",
        ],
    }
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "figures": figures, "runs": bench.runs}, indent=1, default=str))
    (out / "results.md").write_text(report.markdown(figures, meta))
    try:
        report.plot(figures, bench.runs, str(out / "plot.png"), never_bound)
    except Exception:
        log(f"plot failed:\n{traceback.format_exc()}")
    print(report.markdown(figures, meta))
    failed = any(run["failures"] for kinds in bench.runs.values() for run in kinds.values())
    if args.keep_tmp or failed:
        log(f"kernels' stdout/stderr kept in {tmp / 'kernels.log'}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # so the finally blocks kill every kernel process by pid


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 5 min)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--only", default="", metavar="SCENARIOS",
                        help=f"comma-separated, of: {','.join(PLAN)} (while iterating)")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the temporary directory (kernel logs)")
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
