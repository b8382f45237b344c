"""Human-readable summaries: the per-cycle markdown (MLflow artifact, Prefect artifact) and the replay table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4f}"


def cycle_markdown(pipeline: str, config_hash: str, res) -> str:
    lines = [
        f"# {pipeline}: batch {res.batch} — {res.status}",
        "",
        "| item | value |",
        "|---|---|",
        f"| quality gate | {res.gate} |",
        f"| rows in batch | {res.rows} |",
        f"| training window | {', '.join(res.train_batches) or '-'} ({res.train_rows} rows) |",
        f"| challenger {res.metric} | {_fmt(res.challenger_metric)} (version {res.challenger_version or '-'}) |",
        f"| champion {res.metric} | {_fmt(res.champion_metric)} (version {res.champion_version_before or '-'}) |",
        f"| champion after | version {res.champion_version_after or '-'} |",
        f"| config hash | {config_hash} |",
        f"| MLflow run | {res.run_id or '-'} |",
        "",
        "## Why",
        "",
    ]
    lines += [f"- {r}" for r in res.reasons] or ["- (nothing to report)"]
    if res.failed_expectations:
        lines += ["", "## Failed expectations", ""] + [f"- {f}" for f in res.failed_expectations]
    if res.record:
        lines += ["", "---", "", decision_markdown(res.record)]
    return "\n".join(lines) + "\n"


def _backtest_lines(bt: dict[str, Any]) -> list[str]:
    m = bt["metric"]
    lines = [
        f"## Back-test ({len(bt['windows'])} windows, {bt['rows']} rows)",
        "",
        f"| window | from | to | rows | challenger {m} | champion {m} | gain | winner |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {w['index']} | {w['start'][:16]} | {w['end'][:16]} | {w['rows']} | {_fmt(w['challenger'])} "
        f"| {_fmt(w['champion'])} | {_fmt(w['gain'])} | {w['winner']} |"
        for w in bt["windows"]
    ]
    lines.append(
        f"| **all** | | | {bt['rows']} | {_fmt(bt['challenger'])} | {_fmt(bt['champion'])} "
        f"| {_fmt(bt['gain'])} | {bt['wins']} won, {bt['losses']} lost |"
    )
    if bt["ci_low"] is not None:
        lines += [
            "",
            f"Paired bootstrap by {bt['block']} ({bt['resamples']} resamples): {bt['confidence']:.0%} "
            f"interval of the gain [{_fmt(bt['ci_low'])}, {_fmt(bt['ci_high'])}].",
        ]
    return lines


def _gates_and_slices_lines(r: dict[str, Any]) -> list[str]:
    lines = ["", "## Gates", "", "| gate | result | observed | threshold | detail |", "|---|---|---|---|---|"]
    lines += [
        f"| {g['name']} | {'pass' if g['passed'] else '**FAIL**'} | {g['observed']} | {g['threshold']} "
        f"| {g['detail']} |"
        for g in r["gates"]
    ]
    if r["slices"]:
        lines += [
            "",
            "## Slices",
            "",
            "| slice | rows | challenger | champion | gain | judged | passed |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {s['column']}={s['value']} | {s['rows']} | {_fmt(s['challenger'])} | "
            f"{_fmt(s['champion'])} | {_fmt(s['gain'])} | {'yes' if s['judged'] else 'no'} | "
            f"{'yes' if s['passed'] else '**no**'} |"
            for s in r["slices"]
        ]
    return lines


def decision_markdown(r: dict[str, Any]) -> str:
    """The decision record as a page a person reads: verdict first, then the evidence."""
    champion = "v" + r["champion_version"] if r["champion_version"] else "(none)"
    lines = [f"# {r['pipeline']} · batch {r['batch']} · **{r['verdict']}** → {r['outcome']}", ""]
    lines += [f"- {reason}" for reason in r["reasons"]]
    lines += [
        "",
        f"Challenger v{r['challenger_version']} vs champion {champion}; trigger `{r['trigger']}`, "
        f"config `{r['config_hash']}`, run `{r['run_id']}`.",
        "",
        f"Trained on {', '.join(r['data']['train_batches'])} ({r['data']['train_rows']} rows, "
        f"up to {r['data']['train_end']}).",
        "",
    ]
    lines += _backtest_lines(r["backtest"]) + _gates_and_slices_lines(r)
    mon = r.get("monitoring") or {}
    if mon.get("fired"):
        lines += ["", "## Why this cycle trained", ""] + [f"- {t}" for t in mon.get("trigger_reasons", [])]
        if mon.get("drifted_columns"):
            lines.append(f"- drifted columns: {', '.join(mon['drifted_columns'])}")
    g = r["guards"]
    latency = g["latency_ms_per_1k"]
    lines += ["", f"Latency {latency:.1f} ms per 1k rows; model {g['model_mb']:.2f} MB." if latency is not None else ""]
    return "\n".join(lines) + "\n"


def table(rows: Iterable[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Plain-text table; columns are (key, header)."""
    rows = list(rows)
    cells = [[h for _, h in columns]] + [["" if r.get(k) is None else str(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


REPLAY_COLUMNS = [
    ("batch", "batch"),
    ("rows", "rows"),
    ("gate", "gate"),
    ("drift", "drifted"),
    ("fired", "trigger fired"),
    ("train", "trained on"),
    ("challenger", "challenger"),
    ("champion", "champion"),
    ("ci", "gain CI"),
    ("promoted", "promoted"),
    ("serving", "champion after"),
    ("status", "outcome"),
]

SERVED_COLUMNS = [
    ("batch", "month"),
    ("served", "policy (served champion)"),
    ("never", "never retrain"),
    ("always", "always promote"),
]

PERIOD_WORDS = {
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "year": ("year", "years"),
}


def period_words(granularity: str | None) -> tuple[str, str]:
    """('month', 'months') for the configured granularity; ('batch', 'batches') when there is none."""
    return PERIOD_WORDS.get(granularity or "", ("batch", "batches"))


def served_lines(results: list[dict[str, Any]], granularity: str | None = None) -> list[str]:
    """The replay's second table and its summary, in the words of the configured periods, saying plainly that the
    baselines are only scored on the batches where a challenger was trained."""
    rows, summary = served_comparison(results)
    if not rows:
        return []
    one, many = period_words(granularity)
    metric = results[-1]["metric"]
    lines = [
        f"Served model's {metric} on each {one} where a challenger was trained (the baselines are scored only "
        "there), against two baselines scored on the same rows:",
        table(rows, [("batch", one), *SERVED_COLUMNS[1:]]),
    ]
    n = summary["months"]
    if n:
        lines.append(
            f"average over the {n} {one if n == 1 else many} where a challenger was trained: policy "
            f"{summary['served']:.4f} ({summary['promotions']} promotions), never retrain {summary['never']:.4f}, "
            f"always promote {summary['always']:.4f} ({summary['always_promote_promotions']} promotions)"
        )
    return lines


def replay_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        tb = r.get("train_batches") or []
        rows.append(
            {
                "batch": r["batch"],
                "rows": r["rows"],
                "gate": r["gate"],
                "drift": f"{r['drifted_share']:.0%}" if r.get("drifted_share") is not None else "-",
                "fired": ",".join(r.get("fired") or []) or "-",
                "train": f"{tb[0]}..{tb[-1]}" if len(tb) > 1 else (tb[0] if tb else "-"),
                "challenger": _fmt(r.get("challenger_metric")),
                "champion": _fmt(r.get("champion_metric")),
                "ci": f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                if r.get("ci_low") is not None and r["ci_low"] == r["ci_low"]
                else "-",
                "promoted": "yes" if r["status"] == "promoted" else "no",
                "serving": f"v{r['champion_version_after']}" if r.get("champion_version_after") else "-",
                "status": r["status"],
            }
        )
    return rows


def served_comparison(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per month: the metric of the model the policy served that month, and of the two baselines
    (first model forever; newest challenger always promoted), all scored on the same whole month.
    Months where any of the three is missing are left out of the averages."""
    rows, full = [], []
    for r in results:
        vals = (r.get("served_metric"), r.get("never_retrain_metric"), r.get("always_promote_metric"))
        if all(v is None for v in vals):
            continue
        rows.append({"batch": r["batch"], "served": _fmt(vals[0]), "never": _fmt(vals[1]), "always": _fmt(vals[2])})
        if all(v is not None and v == v for v in vals):
            full.append(vals)
    n = len(full)
    summary = {"months": n, "batches_compared": n}  # "months": the older name of the same count, whatever the period
    if n:
        summary.update({k: sum(v[i] for v in full) / n for i, k in enumerate(("served", "never", "always"))})
    promotions = sum(1 for r in results if r["status"] == "promoted")
    trained = sum(1 for r in results if r.get("challenger_version"))
    summary.update({"promotions": promotions, "always_promote_promotions": trained})
    return rows, summary
