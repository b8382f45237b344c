"""ctpipeline's benchmark: one command, one process, interleaved rounds, a table and a JSON file.

    .venv/bin/python bench/run.py [--rows 100000,1000000,3000000] [--rounds 3] [--quick] [--json out.json]
                                  [--only gate,drift,cycle,replay,webhook] [--cycle-scale 1,12]

Sections (bench/README.md says what each contender is and how to read the figures):

* ``gate``: the GX gate at each size, clean and broken: naive GX vs the project vs the numpy floor;
* ``drift``: drift at each size: naive Evidently DataDriftPreset vs the project vs the numpy floor;
* ``cycle``: one real flights month through the pipeline's steps vs a bare fit + score, in this process
  (``--cycle-scale 1,12``: also with every month resampled to 12x its rows, a ~1M-row training window);
* ``replay``: ``ctp demo`` (the 12-month replay) in a child process: wall time and peak RSS;
* ``webhook``: ``ctp webhook serve`` in front of a real Prefect server: a 1,000-alert storm, then p50/p99 under
  200 requests/s for 20 s.

Times come from interleaved rounds (each contender once per round, the baseline first, the order reversed every
other round); memory from a separate pass (peak RSS, then tracemalloc, never timed). ``--quick`` runs everything
small (100k rows, 2 rounds, a 1-month replay, 5 s of load, no memory pass for the naive contenders and the cycle).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Case, interleave, memory, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("gate", "drift", "cycle", "replay", "webhook")


def _args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="100000,1000000,3000000", help="batch sizes for gate and drift")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per case (default 3)")
    ap.add_argument("--quick", action="store_true", help="small and fast: 100k rows, 2 rounds, short replay/load")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    ap.add_argument("--json", type=Path, help="write every figure to this JSON file")
    ap.add_argument("--cap", type=float, default=60.0, help="a contender slower than this (s) runs one round only")
    ap.add_argument("--naive-gate-max-rows", type=int, default=3_000_000, help="no naive GX above this size")
    ap.add_argument("--naive-drift-max-rows", type=int, default=1_000_000, help="no naive Evidently above this")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "ctp-bench")
    ap.add_argument(
        "--cycle-scale", default="1", help="cycle: each real month resampled to N times its rows (e.g. 1,12)"
    )
    ap.add_argument("--replay-months", type=int, help="months for the replay (default 12, --quick 1)")
    ap.add_argument("--load-seconds", type=float, help="webhook load duration (default 20, --quick 5)")
    ap.add_argument("--rate", type=float, default=200.0, help="webhook requests per second (default 200)")
    args = ap.parse_args(argv)
    args.sizes = [int(x) for x in args.rows.split(",") if x.strip()]
    args.cycle_scales = [int(x) for x in args.cycle_scale.split(",") if x.strip()]
    args.sections = [s for s in args.only.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.quick:
        args.sizes = [100_000] if args.rows == ap.get_default("rows") else args.sizes
        args.rounds = 2 if args.rounds == ap.get_default("rounds") else args.rounds
    args.replay_months = args.replay_months or (1 if args.quick else None)
    args.load_seconds = args.load_seconds or (5.0 if args.quick else 20.0)
    return args


def _warm_up(cache_dir: Path, work_dir: Path, cfg, log) -> None:
    """Imports and first-call costs (GX's registry, Evidently's import, the suite's groups) outside the timings."""
    from gate_bench import drift_cases, finish, gate_cases

    t0 = time.perf_counter()
    for case in gate_cases(5_000, cache_dir, work_dir, 5_000, log) + drift_cases(5_000, cache_dir, cfg, 5_000, log):
        for fn in case.contenders.values():
            fn()
        finish(case)
    log(f"warm-up (imports, first calls) in {time.perf_counter() - t0:.1f} s")


def _timed(case: Case, args, log) -> Case:
    from gate_bench import finish

    interleave(case, args.rounds, args.cap, log)
    finish(case)
    if args.no_memory or (args.quick and case.section == "cycle"):
        case.notes.append("no memory pass" + (" (--quick)" if not args.no_memory else ""))
    else:
        over = {n for n, ts in case.times.items() if len(ts) < args.rounds and args.rounds > 1}
        if args.quick:  # the naive runs take most of the time: no memory pass for them in --quick
            over |= {n for n in case.contenders if n.startswith("naive")}
        memory(case, over, log)
    case.contenders = dict.fromkeys(case.contenders)  # names only: let the frames go
    return case


def _case_json(case: Case) -> dict:
    return {"section": case.section, "case": case.name, "results": summarise(case), "notes": case.notes, **case.extra}


def _fmt_mem(r: dict) -> str:
    if "skipped" in r or ("peak_rss_mb" not in r and "peak_traced_mb" not in r):
        return "-"
    rss, traced = r.get("peak_rss_mb"), r.get("peak_traced_mb")
    return f"{'?' if rss is None else f'{rss:.0f}'} / {'?' if traced is None else f'{traced:.0f}'}"


def _print_case(c: dict, out) -> None:
    print(f"\n{c['section']}: {c['case']}", file=out)
    print(f"  {'contender':<18}{'runs':>5}{'min s':>10}{'median s':>10}{'x base':>9}   {'MB rss/traced':>14}", file=out)
    for name, r in c["results"].items():
        ratio = r["ratio_to_baseline_median"]
        print(
            f"  {name:<18}{r['runs']:>5}{r['min_s']:>10.3f}{r['median_s']:>10.3f}"
            f"{(f'{ratio:.3f}' if ratio is not None else '-'):>9}   {_fmt_mem(r):>14}",
            file=out,
        )
    v = c.get("verdicts")
    if v:
        same = ", ".join(f"{k} {'same' if ok else 'DIFFERENT'}" for k, ok in v["same_as_reference"].items())
        print(f"  verdicts vs {v['reference']}: {same}", file=out)
        for k, d in v["differences"].items():
            print(f"    {k} differs on: {', '.join(d)}", file=out)
    for note in c["notes"]:
        print(f"  note: {note}", file=out)


def _headline(cases: list[dict], out) -> dict:
    """Gate + drift per size: naive / project and project / floor on the medians (clean gate + drift)."""
    by = {(c["section"], c["case"]): c["results"] for c in cases}
    head = {}
    for (section, name), res in by.items():
        if section != "gate" or not name.endswith(" clean"):
            continue
        rows = name.split(" rows")[0]
        drift = by.get(("drift", f"{rows} + {rows} rows"))
        if not drift:
            continue
        total = {
            k: res[k]["median_s"] + drift[k]["median_s"] for k in ("project", "numpy floor") if k in res and k in drift
        }
        if "naive GX" in res and "naive Evidently" in drift:
            total["naive"] = res["naive GX"]["median_s"] + drift["naive Evidently"]["median_s"]
        line = {"seconds": {k: round(v, 3) for k, v in total.items()}}
        if "naive" in total:
            line["naive_over_project"] = round(total["naive"] / total["project"], 1)
        line["project_over_floor"] = round(total["project"] / total["numpy floor"], 2)
        head[rows] = line
        print(f"gate (clean) + drift at {rows} rows: {line}", file=out)
    return head


def main(argv=None) -> int:
    args = _args(argv)
    out = sys.stdout

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from ctpipeline.config.schema import load_config

    cfg = load_config(ROOT / "configs" / "flights.yaml")
    started = time.perf_counter()
    report: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "node": platform.node()},
        "args": {k: str(v) for k, v in vars(args).items()},
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="ctp-bench-") as tmp:
        work = Path(tmp)
        cases = _run_sections(args, cfg, work, log)
        report["cases"] = [_case_json(c) for c in cases if isinstance(c, Case)]
        report.update({k: v for c in cases if isinstance(c, dict) for k, v in c.items()})
    for c in report["cases"]:
        _print_case(c, out)
    print("", file=out)
    report["gate_plus_drift"] = _headline(report["cases"], out)
    for key in ("replay", "webhook"):
        if key in report:
            print(f"{key}: {json.dumps(report[key])}", file=out)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\nbenchmark took {report['seconds']:.0f} s", file=out)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {args.json}", file=out)
    return 0


def _run_sections(args, cfg, work: Path, log) -> list:
    from gate_bench import drift_cases, gate_cases

    done: list = []
    if {"gate", "drift"} & set(args.sections):
        _warm_up(args.cache_dir, work, cfg, log)
    for rows in args.sizes:
        if "gate" in args.sections:
            done += [
                _timed(c, args, log) for c in gate_cases(rows, args.cache_dir, work, args.naive_gate_max_rows, log)
            ]
        if "drift" in args.sections:
            done += [
                _timed(c, args, log) for c in drift_cases(rows, args.cache_dir, cfg, args.naive_drift_max_rows, log)
            ]
    if "cycle" in args.sections:
        from cycle_bench import cycle_case

        for scale in args.cycle_scales:
            case = cycle_case(work, ROOT / "configs" / "flights.yaml", 2 if args.quick else 4, log, scale)
            if not args.quick:  # a first cycle untimed (MLflow's first writes); --quick: round 1 pays it, see min
                case.contenders["pipeline cycle"]()
            done.append(_timed(case, args, log))
    if "replay" in args.sections:
        from service_bench import replay

        done.append({"replay": replay(work, args.replay_months, 1800, log)})
    if "webhook" in args.sections:
        from service_bench import webhook

        done.append({"webhook": webhook(work, args.rate, args.load_seconds, 1000, log)})
    return done


if __name__ == "__main__":
    raise SystemExit(main())
