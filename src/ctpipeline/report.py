"""Human-readable summaries: the per-cycle markdown (MLflow artifact, Prefect artifact) and the replay table."""

from __future__ import annotations

from typing import Any, Iterable


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4f}"


def cycle_markdown(p, res) -> str:
    lines = [
        f"# {p.name}: batch {res.batch} — {res.status}",
        "",
        "| item | value |",
        "|---|---|",
        f"| quality gate | {res.gate} |",
        f"| rows in batch | {res.rows} |",
        f"| training window | {', '.join(res.train_batches) or '-'} ({res.train_rows} rows) |",
        f"| challenger {res.metric} | {_fmt(res.challenger_metric)} (version {res.challenger_version or '-'}) |",
        f"| champion {res.metric} | {_fmt(res.champion_metric)} (version {res.champion_version_before or '-'}) |",
        f"| champion after | version {res.champion_version_after or '-'} |",
        f"| config hash | {p.cfg.config_hash()} |",
        f"| MLflow run | {res.run_id or '-'} |",
        "",
        "## Why",
        "",
    ]
    lines += [f"- {r}" for r in res.reasons] or ["- (nothing to report)"]
    if res.failed_expectations:
        lines += ["", "## Failed expectations", ""] + [f"- {f}" for f in res.failed_expectations]
    return "\n".join(lines) + "\n"


def table(rows: Iterable[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Plain-text table; columns are (key, header)."""
    rows = list(rows)
    cells = [[h for _, h in columns]] + [["" if r.get(k) is None else str(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


REPLAY_COLUMNS = [("batch", "batch"), ("rows", "rows"), ("gate", "gate"), ("train", "trained on"),
                  ("challenger", "challenger"), ("champion", "champion"), ("promoted", "promoted"),
                  ("serving", "champion after"), ("status", "outcome")]


def replay_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        tb = r.get("train_batches") or []
        rows.append({
            "batch": r["batch"], "rows": r["rows"], "gate": r["gate"],
            "train": f"{tb[0]}..{tb[-1]}" if len(tb) > 1 else (tb[0] if tb else "-"),
            "challenger": _fmt(r.get("challenger_metric")), "champion": _fmt(r.get("champion_metric")),
            "promoted": "yes" if r["status"] == "promoted" else "no",
            "serving": f"v{r['champion_version_after']}" if r.get("champion_version_after") else "-",
            "status": r["status"],
        })
    return rows
