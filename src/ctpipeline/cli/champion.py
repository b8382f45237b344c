"""`ctp status | history | rollback | approve | reject`: what serves, how it got there, and the human actions."""

from __future__ import annotations

import sys

from ctpipeline.cli.common import emit_json, open_pipeline

BATCH_COLUMNS = [
    ("batch", "batch"),
    ("status", "status"),
    ("outcome", "outcome"),
    ("rows", "rows"),
    ("champion_version", "champion"),
    ("at", "at"),
]
LEDGER_COLUMNS = [
    ("at", "at"),
    ("action", "action"),
    ("move", "champion"),
    ("trigger", "trigger"),
    ("actor", "by"),
    ("reason", "reason"),
]


def cmd_status(args) -> int:
    from ctpipeline.core.report import table

    p = open_pipeline(args, read_only=True)
    ledger = reconciled(p)
    aliases = {a: p.registry.get_alias(a) for a in ("champion", "challenger")}
    recs = p.batch_log.records()
    if args.json:
        emit_json(
            {
                "pipeline": p.name,
                "batch_log": str(p.batch_log.path),
                "batches": recs,
                "aliases": {a: ({"version": r.version, "uri": r.uri} if r else None) for a, r in aliases.items()},
                "ledger": ledger,
            }
        )
        return 0
    for alias, ref in aliases.items():
        print(f"{alias:<11} {('v' + ref.version + '  ' + ref.uri) if ref else '(none)'}")
    if ledger["mismatch"]:
        print(f"ledger      OUT OF STEP: {ledger['mismatch']}")
    if r := ledger["repaired"]:
        print(f"ledger      repaired now: v{r['from_version'] or '-'} -> v{r['to_version']} recorded ({r['reason']})")
    print(f"\nbatches processed: {len(recs)} (log: {p.batch_log.path})")
    shown = (
        recs if args.all else [r for i, r in enumerate(recs) if i >= len(recs) - 20 or r.get("status") != "accepted"]
    )
    if recs:
        print(table(shown, BATCH_COLUMNS))
    if len(shown) < len(recs):
        print(f"({len(recs) - len(shown)} older accepted batches not shown; every rejected one is: `--all` lists all)")
    return 0


def reconciled(p) -> dict:
    """Bring the ledger in step with the registry (a `reconcile` row) when a crash or a move outside ctp left it
    behind: {"repaired": the row written or None, "mismatch": why they disagree, when the row cannot be written}."""
    from ctpipeline.steps.promote import ledger_mismatch, reconcile

    try:
        return {"repaired": reconcile(p), "mismatch": None}
    except OSError:  # a state folder we may read but not write: report only
        return {"repaired": None, "mismatch": ledger_mismatch(p)}


def cmd_history(args) -> int:
    from ctpipeline.core.report import table

    p = open_pipeline(args, read_only=True)
    ledger = reconciled(p)
    rows = p.ledger.rows()
    if ledger["mismatch"]:
        print(f"warning: {ledger['mismatch']}", file=sys.stderr)
    if args.json:
        emit_json({"pipeline": p.name, "ledger": str(p.ledger.path), "moves": rows})
        return 0
    if not rows:
        print(f"no champion moves recorded yet ({p.ledger.path})")
        return 0
    for r in rows:
        r["move"] = f"v{r['from_version'] or '-'} -> v{r['to_version']}"
    print(table(rows, LEDGER_COLUMNS))
    return 0


def cmd_rollback(args) -> int:
    from ctpipeline.steps.promote import rollback

    p = open_pipeline(args, read_only=True)
    old, new = rollback(p, args.to_version, args.reason)
    print(
        f"{p.name}: champion rolled back from v{old} to v{new} (models:/{p.name}@champion); "
        "another rollback steps further back through the ledger"
    )
    return 0


def cmd_approve(args) -> int:
    from ctpipeline.steps.promote import approve

    p = open_pipeline(args, read_only=True)
    print(f"{p.name}: v{approve(p, args.reason)} approved and promoted to champion")
    return 0


def cmd_reject(args) -> int:
    from ctpipeline.steps.promote import reject

    p = open_pipeline(args, read_only=True)
    print(f"{p.name}: v{reject(p, args.reason)} rejected; the champion is unchanged")
    return 0
