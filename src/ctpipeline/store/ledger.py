"""The promotion ledger: one append-only JSON-lines row per move of the `champion` alias.

MLflow keeps only where an alias points now (an alias history has been an open request since 2019);
this file, beside the registry's state, keeps where it pointed before, who moved it, when and why,
so that `ctp rollback` is one command and `ctp history` tells the story.

A move is written twice: an *intent* row (``"state": "intent"``) before the alias moves, and the move row after.
If the process dies (or the write fails) in between, the registry and the ledger disagree; the next command that
reads the champion appends an ``action: reconcile`` row naming both (with the intent's details when there is
one), so the ledger's last ``to_version`` is always the registry's champion again. :meth:`Ledger.rows` are the
moves (intents left out); :func:`champion_stack` reads them as the order in which champions replaced each other,
which is what `ctp rollback` steps back through.
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
        intent: bool = False,
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
        if intent:
            row["state"] = "intent"
        append_jsonl(self.path, row)
        return row

    def all_rows(self) -> list[dict[str, Any]]:
        """Every row, intents included."""
        return read_jsonl(self.path)

    def rows(self) -> list[dict[str, Any]]:
        """The moves of the champion, oldest first (intent rows left out)."""
        return [r for r in self.all_rows() if r.get("state") != "intent"]

    def champion(self) -> str | None:
        """Where the ledger says the champion is: the last move's `to_version`."""
        moves = self.rows()
        return str(moves[-1]["to_version"]) if moves else None

    def intent_for(self, to_version: str) -> dict[str, Any] | None:
        """The latest intent to move the champion to `to_version` not followed by any move row."""
        found = None
        for r in self.all_rows():
            if r.get("state") == "intent":
                found = r if str(r.get("to_version")) == str(to_version) else found
            else:
                found = None
        return found


def champion_stack(moves: list[dict[str, Any]]) -> list[str]:
    """The champions in the order they replaced each other, the current one last.

    A promotion (or approval, or reconcile) pushes its `to_version`; a rollback to a version on the stack pops back
    to it (so a second rollback steps further back instead of toggling between two versions); a rollback to a
    version that is not on the stack (`--to-version N`) pushes it."""
    stack: list[str] = []
    for m in moves:
        to = str(m["to_version"])
        if m.get("action") == "rollback" and to in stack:
            del stack[len(stack) - stack[::-1].index(to) :]
        elif not stack or stack[-1] != to:
            stack.append(to)
    return stack
