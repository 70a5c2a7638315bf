"""Turn timings into the printed table, the target checks and benchmarks/RESULTS.md.

Ratios are to the hand-written NumPy row (kind "numpy") and to the fastest PyTorch row (kind
"torch": idiomatic nn + optim, or the functional variant, whichever is faster).
"""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Timing, Workload

Results = list[tuple[Workload, dict[str, Timing]]]


def _ref(wl: Workload, timings: dict[str, Timing], kind: str) -> float | None:
    ts = [timings[i.name].median for i in wl.impls if i.kind == kind and i.name in timings]
    return min(ts) if ts else None


def rows(wl: Workload, timings: dict[str, Timing]) -> list[list[str]]:
    np_t, torch_t = _ref(wl, timings, "numpy"), _ref(wl, timings, "torch")
    out = []
    for impl in wl.impls:
        t = timings[impl.name]
        out.append(
            [
                f"{wl.key} {wl.name}",
                impl.name,
                f"{t.median * wl.scale:.4g} {wl.unit}",
                f"{t.best * wl.scale:.4g}",
                f"{t.spread:.0%}",
                f"{t.faults:.0f}",
                f"{t.median / np_t:.2f}x" if np_t else "-",
                f"{t.median / torch_t:.2f}x" if torch_t else "-",
            ]
        )
    return out


HEADER = [
    "workload",
    "implementation",
    "median",
    "best",
    "IQR",
    "page faults/call",
    "vs NumPy",
    "vs PyTorch",
]


def _medians(wl: Workload, timings: dict[str, Timing]) -> dict[str, float]:
    return {name: t.median for name, t in timings.items()}


def flops_lines(wl: Workload, timings: dict[str, Timing], peak: float | None) -> list[str]:
    """Achieved GFLOP/s per implementation, against the measured float32 GEMM peak."""
    if not wl.flops or not timings:
        return []
    lines = [f"{wl.flops / 1e9:.4g} GFLOP per call (the products of forward and backward)"]
    for name, t in timings.items():
        rate = wl.flops / t.median / 1e9
        share = f", {rate / peak:.1%} of the {peak:.0f} GFLOP/s GEMM peak" if peak else ""
        lines.append(f"{name}: {rate:.3g} GFLOP/s{share}")
    return lines


def extra_lines(wl: Workload, timings: dict[str, Timing], peak: float | None) -> list[str]:
    lines = wl.extras(_medians(wl, timings)) if wl.extras and timings else []
    return lines + flops_lines(wl, timings, peak) + ["note: " + n for n in wl.notes]


def workload_text(wl: Workload, timings: dict[str, Timing], peak: float | None = None) -> str:
    table = [HEADER, *rows(wl, timings)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    lines += ["  " + s for s in extra_lines(wl, timings, peak)]
    return "\n".join(lines) + "\n"


def _ratio(results: Results, key: str, a: str, b: str) -> float | None:
    """Median of impl `a` over impl `b` (b may be 'torch': the fastest torch row)."""
    for wl, timings in results:
        if wl.key != key or a not in timings:
            continue
        tb = (
            _ref(wl, timings, "torch")
            if b == "torch"
            else (timings[b].median if b in timings else None)
        )
        return timings[a].median / tb if tb else None
    return None


def _metric(results: Results, key: str, name: str) -> float | None:
    return next((wl.metrics.get(name) for wl, _ in results if wl.key == key), None)


Check = tuple[str, Callable[[Results], float | None], float, str]
TARGETS: list[Check] = [
    ("W1 time <= 1.10x NumPy", lambda r: _ratio(r, "W1", "chainrule", "numpy"), 1.10, "<="),
    ("W1 faster than PyTorch", lambda r: _ratio(r, "W1", "chainrule", "torch"), 1.0, "<"),
    ("W1 peak memory <= 1.3x NumPy", lambda r: _metric(r, "W1", "peak_ratio"), 1.3, "<="),
    ("W2 time <= 1.5x NumPy", lambda r: _ratio(r, "W2", "chainrule", "numpy"), 1.5, "<="),
    (
        "W2 time <= 1.5x NumPy (chainrule.compile)",
        lambda r: _ratio(r, "W2", "chainrule-compiled", "numpy"),
        1.5,
        "<=",
    ),
    ("W2 faster than PyTorch", lambda r: _ratio(r, "W2", "chainrule", "torch"), 1.0, "<"),
    ("W3 us/op below PyTorch's", lambda r: _ratio(r, "W3", "chainrule", "torch"), 1.0, "<"),
    (
        "W4 >= 50x faster than micrograd",
        lambda r: _inv(_ratio(r, "W4", "chainrule", "micrograd")),
        50.0,
        ">=",
    ),
    ("W5 <= 1.0x torch.func.hessian", lambda r: _ratio(r, "W5", "chainrule", "torch"), 1.0, "<="),
    (
        "W5 <= 1.0x torch.func.hessian (compiled)",
        lambda r: _ratio(r, "W5", "chainrule-compiled", "torch"),
        1.0,
        "<=",
    ),
    ("W7 vmap <= 1.0x torch.func.vmap", lambda r: _ratio(r, "W7", "chainrule", "torch"), 1.0, "<="),
]


def _vs_torch(key: str, impl: str) -> Callable[[Results], float | None]:
    return lambda r: _ratio(r, key, impl, "torch")


# The layer workloads: one target per model, checked for the eager and the compiled step.
TARGETS += [
    (f"{key} {what} step <= {bound}x PyTorch ({how})", _vs_torch(key, impl), bound, "<=")
    for key, what, bound in [("W8", "Conv1d", 1.0), ("W9", "Conv2d", 1.2), ("W10", "GRU", 1.5)]
    for impl, how in [("chainrule", "eager"), ("chainrule-compiled", "compiled")]
]


def _inv(x: float | None) -> float | None:
    return 1 / x if x else None


def verdict(v: float, bound: float, cmp: str) -> str:
    """'met' or 'MISSED', with the margin: how far under (or over) the bound the value is."""
    ok = {"<=": v <= bound, "<": v < bound, ">=": v >= bound}[cmp]
    margin = v / bound - 1 if cmp != ">=" else bound / v - 1  # > 0: worse than the bound
    return f"met ({-margin:.0%} to spare)" if ok else f"MISSED by {margin:.0%}"


def target_rows(results: Results) -> list[list[str]]:
    out = []
    keys = {wl.key for wl, _ in results}
    for desc, get, bound, cmp in TARGETS:
        if desc.split()[0] not in keys:
            continue
        v = get(results)
        if v is None:
            out.append([desc, "not measured", "n/a: see the workload's notes"])
            continue
        out.append([desc, f"{v:.2f}x", verdict(v, bound, cmp)])
    return out


def targets_text(results: Results) -> str:
    return "targets:\n" + "\n".join(f"  {d:<44} {v:>12}  {s}" for d, v, s in target_rows(results))


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in body),
    ]


def markdown(
    results: Results,
    machine: list[tuple[str, str]],
    args: argparse.Namespace,
    elapsed: float,
    peak: float | None = None,
    warning: str | None = None,
) -> str:
    """RESULTS.md: the machine table, the targets (after `warning`, if the machine was
    loaded), the medians, analysis.md and each workload's extra lines."""
    mode = "--quick" if args.quick else "full"
    flags = " --quick" if args.quick else ""
    flags += f" --only {args.only}" if args.only else ""
    flags += f" --threads {args.threads}" if args.threads != (os.cpu_count() or 1) else ""
    flags += " --keep-pin" if args.keep_pin else ""
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run.py{flags}` ({mode} run, "
        f"{elapsed:.0f} s) on {datetime.date.today()}. See docs/benchmarks.md for what "
        "each workload does and how to read this.",
        "",
        "## Machine",
        "",
    ]
    lines += _md_table(["", ""], [[k, v] for k, v in machine])
    lines += ["", "## Targets", ""]
    if warning:
        lines += [f"**Warning:** {warning}", ""]
    lines += _md_table(["target", "measured", ""], target_rows(results))
    lines += ["", "## Medians", ""]
    lines += _md_table(HEADER, [r for wl, t in results for r in rows(wl, t)])
    analysis = Path(__file__).with_name("analysis.md")
    if analysis.exists():
        lines += ["", analysis.read_text().rstrip()]
    for wl, timings in results:
        extra = extra_lines(wl, timings, peak)
        if extra:
            lines += ["", f"### {wl.key} {wl.name}", "", *("- " + e for e in extra)]
    return "\n".join(lines) + "\n"
