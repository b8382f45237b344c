"""The message a cycle's outcome is announced with (`notifications:`): which event an outcome is, and its title and
body. Pure: no tool, no I/O, and nothing secret (an error is named by its type only; a run link loses any
user:password and query of the tracking URI)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ctpipeline.core.cycle import CycleResult

# event -> Apprise notify type (the colour or icon a destination shows)
LEVELS = {"promoted": "success", "rejected": "warning", "awaiting_approval": "info", "failed": "failure"}
STATUS_EVENTS = {
    "promoted": "promoted",
    "quarantined": "rejected",
    "gate-failed": "rejected",
    "awaiting-approval": "awaiting_approval",
}
MAX_LISTED = 20  # failed expectations named in one message; the rest are counted
MAX_BODY_CHARS = 4000  # Slack and most chat tools cut longer messages anyway


@dataclass(frozen=True)
class Notice:
    """One message: its event (a `notifications.events` name), title, body and Apprise notify type."""

    event: str
    title: str
    body: str
    level: str


def event_of(res: CycleResult, failed: bool = False) -> str | None:
    """The event a finished cycle announces (`failed`: it crashed), or None (accumulating, kept champion...)."""
    return "failed" if failed else STATUS_EVENTS.get(res.status)


def url_scheme(url: str) -> str:
    """The scheme of an Apprise URL (``slack``, ``mailto``, ``json``): all of it a log line may show."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").isalnum() and len(head) <= 32 else "?"


def run_link(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    """The MLflow UI's page of a run on a tracking server (http/https), without credentials; None otherwise."""
    if not (tracking_uri and experiment_id and run_id):
        return None
    try:
        parts = urlsplit(tracking_uri)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    base = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def _num(x: float | None, signed: bool = False) -> str:
    return "n/a" if x is None else (f"{x:+.4f}" if signed else f"{x:.4f}")


def _scores(res: CycleResult) -> list[str]:
    if res.challenger_metric is None:
        return []
    line = f"{res.metric}: challenger {_num(res.challenger_metric)}, champion {_num(res.champion_metric)}"
    if res.gain is not None:
        line += f", gain {_num(res.gain, True)}"
        if res.ci_low is not None and res.ci_high is not None:
            line += f" (interval {_num(res.ci_low, True)} to {_num(res.ci_high, True)})"
    return [line]


def _headline(res: CycleResult, event: str, error: str | None) -> tuple[str, list[str]]:
    """(title words, first lines of the body) for `event`."""
    before, challenger = _v(res.champion_version_before), _v(res.challenger_version)
    if event == "promoted":
        return f"{challenger} promoted", [f"champion is now {challenger} (was {before})"]
    if event == "awaiting_approval":
        return f"{challenger} awaits approval", [
            f"challenger {challenger} passed the policy and waits for `ctp approve` or `ctp reject`; "
            f"champion {before} stays"
        ]
    if event == "rejected":
        failed = list(res.failed_expectations)
        lines = [f"batch rejected by the quality gate; champion {before} stays"]
        if failed:
            lines.append("failed expectations:")
            lines += [f"  - {f}" for f in failed[:MAX_LISTED]]
            if len(failed) > MAX_LISTED:
                lines.append(f"  ... and {len(failed) - MAX_LISTED} more")
        return "batch rejected", lines
    why = f" ({error})" if error else ""
    return "cycle failed", [f"the cycle crashed{why}; champion {before} stays; see the run's logs"]


def cycle_notice(
    pipeline: str, res: CycleResult, event: str, *, error: str | None = None, link: str | None = None
) -> Notice:
    """The message for `event` on the cycle `res` of `pipeline`. `error`: what crashed (a type name, never an
    error's text, which may carry a URI); `link`: the run's page in the MLflow UI."""
    words, lines = _headline(res, event, error)
    batch = res.batch or "-"
    body = [f"pipeline {pipeline}, batch {batch}: {event.replace('_', ' ')}", *lines, *_scores(res)]
    reasons = [r for r in res.reasons if r]  # first lines only: a rejection's expectations are listed above
    if reasons:
        body.append("reason: " + reasons[0].splitlines()[0])
        body += [f"  - {r.splitlines()[0]}" for r in reasons[1:MAX_LISTED]]
    if link:
        body.append(f"MLflow run: {link}")
    elif res.run_id:
        body.append(f"MLflow run: {res.run_id} (`ctp ui mlflow`)")
    text = "\n".join(body)
    if len(text) > MAX_BODY_CHARS:
        text = text[: MAX_BODY_CHARS - 20].rstrip() + "\n... (cut)"
    return Notice(event, f"ctp {pipeline} {batch}: {words}", text, LEVELS[event])


def approval_notice(pipeline: str, version: str, was: str | None, reason: str) -> Notice:
    """A challenger waiting for approval promoted by hand (`ctp approve`)."""
    body = f"pipeline {pipeline}: promoted\nchampion is now v{version} (was {_v(was)}) by approval\nreason: {reason}"
    return Notice("promoted", f"ctp {pipeline}: v{version} promoted (approved)", body, LEVELS["promoted"])
