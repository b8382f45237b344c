"""Timing and memory, measured apart: interleaved rounds for time, a separate pass for peak memory.

* :func:`interleave` runs every contender of a case once per round (baseline first, the order reversed every
  other round so no contender always runs on a warmer cache), ``gc.collect()`` before each run; a contender
  whose run takes longer than ``cap_s`` is not run again in later rounds (its single figure is used for every
  round's ratio, and the table says ``n=1``).
* :func:`memory` measures one run with nothing else switched on: the peak resident set size above the one
  before the call (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), then, in a second run, the peak of
  ``tracemalloc`` (Python and numpy allocations). tracemalloc slows Python-heavy code several times over: its
  runs are never timed.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Case", "interleave", "memory", "rss_mb", "summarise"]


@dataclass
class Case:
    """One benchmark case: contenders (name -> callable), the first one the baseline of the ratios; `settle`
    (name -> callable) runs untimed after its contender, e.g. to wait for work it left running in the background,
    so that the next contender does not share the machine with it."""

    section: str
    name: str
    contenders: dict[str, Callable[[], Any]]
    settle: dict[str, Callable[[], Any]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def _nothing() -> None:
    return None


def _status_kb(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        return None
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:  # pragma: no cover - not Linux, or not allowed
        return False


def interleave(case: Case, rounds: int, cap_s: float, log: Callable[[str], None] = print) -> Case:
    names = list(case.contenders)
    capped: set[str] = set()
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            if name in capped:
                continue
            gc.collect()
            t0 = time.perf_counter()
            case.contenders[name]()
            dt = time.perf_counter() - t0
            case.settle.get(name, _nothing)()
            case.times.setdefault(name, []).append(dt)
            log(f"  {case.section} {case.name}: {name} round {r + 1}: {dt:.3f} s")
            if dt > cap_s and r + 1 < rounds:
                capped.add(name)
                case.notes.append(f"{name}: {dt:.0f} s > cap {cap_s:.0f} s, run once")
    return case


def memory(case: Case, skip: set[str] = frozenset(), log: Callable[[str], None] = print) -> Case:
    """Peak RSS above the start, then peak traced allocations, one run each, for every contender not skipped."""
    for name, fn in case.contenders.items():
        if name in skip:
            case.memory[name] = {"skipped": "no memory pass (over the time cap, or --quick)"}
            continue
        gc.collect()
        before = rss_mb()
        peak_rss = None
        if before is not None and _reset_peak():
            fn()
            case.settle.get(name, _nothing)()
            hwm = _status_kb("VmHWM")
            peak_rss = None if hwm is None else round(hwm / 1024 - before, 1)
        gc.collect()
        tracemalloc.start()
        try:
            fn()
            case.settle.get(name, _nothing)()
            traced = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        case.memory[name] = {"peak_rss_mb": peak_rss, "peak_traced_mb": round(traced, 1)}
        log(f"  {case.section} {case.name}: {name} memory: +{peak_rss} MB RSS, {traced:.1f} MB traced")
    return case


def summarise(case: Case) -> dict:
    """min / median seconds per contender, and the median over rounds of each one's ratio to the baseline."""
    names = list(case.contenders)
    base = case.times.get(names[0], [])
    out: dict[str, dict] = {}
    for name in names:
        ts = case.times.get(name, [])
        if not ts:
            continue
        # round by round; a contender run once (over the cap) stands for itself in every round
        pairs = [(ts[min(i, len(ts) - 1)], base[min(i, len(base) - 1)]) for i in range(max(len(ts), len(base)))]
        ratios = [t / b for t, b in pairs if b]
        out[name] = {
            "runs": len(ts),
            "min_s": round(min(ts), 4),
            "median_s": round(statistics.median(ts), 4),
            "times_s": [round(t, 4) for t in ts],
            "ratio_to_baseline_median": round(statistics.median(ratios), 4) if ratios else None,
            **case.memory.get(name, {}),
        }
    return out
