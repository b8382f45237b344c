"""The promotion ledger: one append-only JSON-lines row per move of the `champion` alias.

MLflow keeps only where an alias points now (an alias history has been an open request since 2019);
this file, beside the registry's state, keeps where it pointed before, who moved it, when and why,
so that `ctp rollback` is one command and `ctp history` tells the story.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from ctpipeline.store.state import append_jsonl, now_iso, read_jsonl


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user database entry in some containers
        user = "unknown"
    return os.environ.get("CTP_ACTOR", user)


class Ledger:
    def __init__(self, path: Path):
        self.path = path

    def append(
        self,
        *,
        action: str,
        from_version: str | None,
        to_version: str,
        reason: str,
        trigger: str,
        run_id: str | None = None,
        alias: str = "champion",
    ) -> dict[str, Any]:
        row = {
            "at": now_iso(),
            "action": action,
            "alias": alias,
            "from_version": from_version,
            "to_version": to_version,
            "reason": reason,
            "trigger": trigger,
            "run_id": run_id,
            "actor": _actor(),
        }
        append_jsonl(self.path, row)
        return row

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)
