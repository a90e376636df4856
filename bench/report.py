"""Figures from the samples: statistics, goals, the markdown table and the plot."""

from __future__ import annotations

import math
import statistics
from typing import Any

KS, IPK = "kernelsvc", "ipykernel"
MB = 1e6


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(values: list[Any], failures: list[str]) -> dict:
    """values: numbers, or None for "never"."""
    nums = [v for v in values if v is not None]
    out: dict[str, Any] = {"n": len(values), "never": len(values) - len(nums),
                           "failures": len(failures), "errors": failures[:5]}
    if nums:
        out.update(median=statistics.median(nums), p99=percentile(nums, 99),
                   min=min(nums), max=max(nums))
    return out


# key, label, scenario, field, unit, stat, goal kind, goal value, goal text
FIGURES = [
    ("launch_kernel_info", "launch → kernel_info_reply", "launch", "kernel_info_ms", "ms",
     "median", "le", 0.5, "≤ 0.5"),
    ("launch_first_result", "launch → first execute result", "launch", "first_result_ms",
     "ms", "median", "le", 1.0, "≤ 1.0"),
    ("rtt_p50", "execute `pass` round trip p50 (300 sequential)", "round_trips", None, "ms",
     "median", "le", 0.35, "≤ 0.35"),
    ("rtt_p99", "execute `pass` round trip p99", "round_trips", None, "ms", "p99", "le", 0.5,
     "≤ 0.5"),
    ("pipelined", "500 pipelined executes", "pipelined", None, "req/s", "median", "ge", 3.0,
     "≥ 3×"),
    ("print_20mb", "20 MB printed in 100-char lines", "print_20mb", "mb_s", "MB/s", "median",
     "ge_exact", 4.0, "≥ 4×, nothing lost"),
    ("display_10mb", "10 MB display_data round trip", "display_10mb", None, "ms", "median",
     "le", 1.0, "≤ 1.0"),
    ("interrupt_message", "interrupt `while True: pass` → reply (message)",
     "interrupt_message", None, "ms", "median", "le", 0.5, "≤ 0.5"),
    ("interrupt_signal", "interrupt `while True: pass` → reply (signal)", "interrupt_signal",
     None, "ms", "median", "le", 0.5, "≤ 0.5"),
    ("sigint_ignored", "code ignoring SIGINT → usable again", "sigint_ignored", None, "ms",
     "median", "grace", 200.0, "ipykernel never; kernelsvc ≤ grace + 0.2 s"),
    ("restart", "restart → `1+1` done", "restart", "ms", "ms", "median", "restart", 0.15,
     "≤ 0.15 (≤ 100 ms)"),
    ("crash_exit_reply", "crash (`os._exit`) → in-flight reply", "crash_exit", "reply_ms",
     "ms", "median", "never", 50.0, "ipykernel never; kernelsvc ≤ 50 ms"),
    ("crash_segv_reply", "crash (segfault) → in-flight reply", "crash_segv", "reply_ms", "ms",
     "median", "never", 50.0, "ipykernel never; kernelsvc ≤ 50 ms"),
    ("crash_exit_usable", "crash (`os._exit`) → new `1+1` done", "crash_exit", "usable_ms",
     "ms", "median", "le", 0.1, "≤ 0.1"),
    ("crash_segv_usable", "crash (segfault) → new `1+1` done", "crash_segv", "usable_ms", "ms",
     "median", "le", 0.1, "≤ 0.1"),
    ("mem_supervisor", "idle memory: supervisor alone (RSS / USS)", "launch", "root", "MB",
     "median", "abs_le", 30.0, "supervisor ≤ 30 MB RSS"),
    ("mem_tree_rss", "idle memory: process tree RSS", "launch", "tree_rss", "MB", "median",
     None, None, "—"),
    ("mem_tree_uss", "idle memory: process tree USS", "launch", "tree_uss", "MB", "median",
     "le", 1.5, "≤ 1.5×"),
]


def values_of(samples: list[Any], fld: str | None, scenario: str) -> list[Any]:
    out: list[Any] = []
    for s in samples:
        if scenario == "round_trips":
            out.extend(s)
        elif fld in ("tree_rss", "tree_uss"):
            out.append(s["memory"][fld] / MB)
        elif fld == "root":
            out.append(s["memory"]["root_rss"] / MB)
        elif fld is None:
            out.append(s)
        else:
            out.append(s[fld])
    return out


def build(runs: dict, grace_s: float, never_bound: float) -> list[dict]:
    """runs[scenario][kind] = {"samples": [...], "failures": [...]}"""
    figures = []
    for key, label, scenario, fld, unit, stat, kind, goal, goal_text in FIGURES:
        fig: dict[str, Any] = {"key": key, "figure": label, "unit": unit, "stat": stat,
                               "goal": goal_text}
        for kern in (KS, IPK):
            run = runs.get(scenario, {}).get(kern, {"samples": [], "failures": []})
            vals = values_of(run["samples"], fld, scenario)
            summ = summarize(vals, run["failures"])
            if fld == "root":
                summ["uss_median"] = statistics.median(
                    [s["memory"]["root_uss"] / MB for s in run["samples"]] or [0])
            if scenario == "print_20mb":
                summ["all_exact"] = bool(run["samples"]) and all(
                    s["exact"] for s in run["samples"])
                summ["bytes"] = [s["bytes"] for s in run["samples"]]
            if scenario in ("round_trips",):
                summ["samples"] = [round(v, 3) for v in vals]
            else:
                summ["samples"] = vals
            fig[kern] = summ
        a, b = fig[KS].get(stat), fig[IPK].get(stat)
        fig["ratio"] = a / b if a is not None and b else None
        fig["met"] = goal_met(kind, goal, fig, grace_s)
        if key == "mem_supervisor":
            fig["ratio"] = None
        figures.append(fig)
    return figures


def goal_met(kind: str | None, goal: float | None, fig: dict, grace_s: float) -> bool | None:
    ks, ipk, ratio = fig[KS], fig[IPK], fig["ratio"]
    if not ks["n"] and not ks["failures"]:
        return None  # not run
    if kind is None or ks["failures"] and "median" not in ks:
        return None if kind is None else False
    if kind == "le":
        return ratio is not None and ratio <= goal
    if kind == "ge":
        return ratio is not None and ratio >= goal
    if kind == "ge_exact":
        return ratio is not None and ratio >= goal and ks.get("all_exact", False)
    if kind == "abs_le":
        return ks.get("median") is not None and ks["median"] <= goal
    if kind == "restart":
        return ratio is not None and ratio <= goal and ks["median"] <= 100
    if kind in ("grace", "never"):  # kernelsvc answers every time, ipykernel never does
        limit = grace_s * 1000 + goal if kind == "grace" else goal
        return ks.get("never") == 0 and ks.get("median", math.inf) <= limit \
            and ipk.get("never", 0) == ipk.get("n", 0) > 0
    return None


def fmt(value: float, unit: str) -> str:
    if unit == "ms" and value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def cell(fig: dict, kern: str, never_bound: float) -> str:
    s = fig[kern]
    if fig["key"] == "mem_supervisor" and kern == IPK:
        return "—"
    if not s["n"] and not s["failures"]:
        return "not run"
    if "median" not in s:
        if s["n"] and s["never"] == s["n"]:
            return f"never (> {never_bound:g} s, n={s['n']})"
        return "FAIL" if s["failures"] or not s["n"] else "—"
    unit, key = fig["unit"], fig["key"]
    text = fmt(s[fig["stat"]], unit)
    extra = []
    if key == "mem_supervisor":
        if kern == IPK:
            return "—"
        text = f"{fmt(s['median'], 'MB')} / {fmt(s['uss_median'], 'MB')}"
    elif unit == "ms" and fig["stat"] == "median" and s["n"] >= 5:
        extra.append(f"p99 {fmt(s['p99'], unit)}")
    if key == "print_20mb":
        text += ", every byte" if s.get("all_exact") else ", BYTES LOST"
    if s["never"]:
        extra.append(f"never ×{s['never']}")
    if s["failures"]:
        extra.append(f"FAIL ×{s['failures']}")
    extra.append(f"n={s['n']}")
    return f"{text} ({', '.join(extra)})"


def markdown(figures: list[dict], meta: dict) -> str:
    m = meta["machine"]
    lines = [
        "# kernelsvc vs ipykernel",
        "",
        f"{meta['date']} · {m['cpus']} CPUs ({m['physical_cpus']} physical), "
        f"{m['memory_gib']:.1f} GiB, Python {m['python']}, {m['platform']} · "
        f"ipykernel {meta['versions']['ipykernel']}, jupyter_client "
        f"{meta['versions']['jupyter_client']} · mode: {meta['mode']} · "
        f"load average {meta['load_before']} before, {meta['load_after']} after · "
        f"{meta['duration_s']:.0f} s",
        "",
        "Both kernels run under jupyter_client's AsyncIOLoopKernelManager in the same run, "
        "alternating per repetition. Cells: median (p99 when n ≥ 5, n = samples); goals are "
        "judged on medians (the p99 row on p99s).",
        "",
        "| figure | kernelsvc | ipykernel | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    bound = meta["never_bound_s"]
    for fig in figures:
        ratio = f"{fig['ratio']:.3g}" if fig["ratio"] is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[fig["met"]]
        lines.append(f"| {fig['figure']} | {cell(fig, KS, bound)} | {cell(fig, IPK, bound)} "
                     f"| {ratio} | {fig['goal']} | {met} |")
    lines += ["", "Notes:", ""] + [f"* {n}" for n in meta["notes"]]
    if meta.get("load_by_scenario"):
        lines.append("* 1-minute load average as each scenario began: " + ", ".join(
            f"{name} {load}" for name, load in meta["load_by_scenario"].items()))
    return "\n".join(lines) + "\n"


def plot(figures: list[dict], runs: dict, path: str, never_bound: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")

    by_key = {f["key"]: f for f in figures}
    colors = {KS: "tab:blue", IPK: "tab:orange"}
    fig, axes = plt.subplots(2, 3, figsize=(17, 10))
    ax = axes[0][0]
    for kern in (KS, IPK):
        vals = [v for v in by_key["rtt_p50"][kern].get("samples", []) if v]
        if vals:
            lo, hi = math.log10(min(vals)), math.log10(max(vals))
            bins = [10 ** (lo + (hi - lo) * i / 60) for i in range(61)] if hi > lo else 20
            ax.hist(vals, bins=bins, alpha=0.6, color=colors[kern], label=kern)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("ms")
    ax.set_ylabel("requests")
    ax.set_title("execute `pass` round trip (reply + idle)")
    ax.legend()

    def boxes(ax, keys: list[tuple[str, str]], title: str) -> None:
        data, labels, cols = [], [], []
        for key, short in keys:
            for kern in (KS, IPK):
                vals = [v for v in by_key[key][kern].get("samples", []) if v is not None]
                data.append(vals or [float("nan")])
                labels.append(f"{short}\n{kern}")
                cols.append(colors[kern])
        parts = ax.boxplot(data, patch_artist=True, widths=0.6)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
        for patch, col in zip(parts["boxes"], cols, strict=True):
            patch.set_facecolor(col)
            patch.set_alpha(0.6)
        for i, vals in enumerate(data, start=1):
            ax.scatter([i] * len(vals), vals, s=8, color="k", alpha=0.5, zorder=3)
        if any(v == v for vals in data for v in vals):  # any number at all (nan != nan)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
        ax.set_ylabel("ms")
        ax.set_title(title)

    boxes(axes[0][1], [("launch_kernel_info", "→ kernel_info"),
                       ("launch_first_result", "→ 1st result")], "launch")
    boxes(axes[0][2], [("interrupt_message", "message"), ("interrupt_signal", "signal")],
          "interrupt `while True: pass` → reply")
    boxes(axes[1][0], [("restart", "restart"), ("display_10mb", "10 MB display")],
          "restart → `1+1` done; 10 MB display_data")
    axes[1][1].remove()
    axes[1][2].remove()
    tl = fig.add_subplot(2, 3, (5, 6))
    timeline(tl, by_key, colors, never_bound)
    tl.xaxis.set_major_formatter(plain)
    fig.suptitle("kernelsvc vs ipykernel (same run, AsyncIOLoopKernelManager)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def timeline(ax, by_key: dict, colors: dict, never_bound: float) -> None:
    """Median crash -> in-flight reply -> usable (a finished `1+1`), per kernel."""
    rows = [("crash_exit", "os._exit"), ("crash_segv", "segfault"),
            ("sigint", "SIGINT ignored")]
    y = 0
    yticks, ylabels = [], []
    for base, label in rows:
        for kern in (KS, IPK):
            if base == "sigint":
                reply = None
                usable = by_key["sigint_ignored"][kern].get("median")
                never = usable is None
            else:
                reply = by_key[f"{base}_reply"][kern].get("median")
                usable = by_key[f"{base}_usable"][kern].get("median")
                never = reply is None
            start = 1.0
            if usable is not None:
                if reply is not None:
                    ax.barh(y, reply - start, left=start, color=colors[kern], alpha=0.9)
                    ax.text(reply, y + 0.3, f"reply {reply:.0f} ms", fontsize=7)
                    ax.barh(y, usable - reply, left=reply, color=colors[kern], alpha=0.4)
                else:
                    ax.barh(y, usable - start, left=start, color=colors[kern], alpha=0.4,
                            hatch="//" if never and base != "sigint" else None)
                ax.text(usable, y - 0.15, f" usable {usable:.0f} ms" +
                        ("  (in-flight reply: never)" if never and base != "sigint" else ""),
                        fontsize=8, va="center")
            elif never:
                ax.barh(y, never_bound * 1000 - start, left=start, color="lightgrey",
                        hatch="xx")
                ax.text(never_bound * 1000, y, f" never (> {never_bound:g} s)", fontsize=8,
                        va="center")
            yticks.append(y)
            ylabels.append(f"{label}\n{kern}")
            y += 1
        y += 0.5
    ax.set_yticks(yticks, ylabels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(1, max(never_bound * 1000 * 4, 1e4))
    ax.set_xlabel("ms after the crash / the interrupt (log)")
    ax.set_title("timeline: crash → in-flight reply (dark) → usable again (light)")
