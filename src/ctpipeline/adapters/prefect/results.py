"""How a cycle shows in Prefect: the flow run named `<pipeline>/<batch>` and tagged with pipeline, batch and outcome,
a markdown artifact, and the final state: Failed named `Rejected` (with the failed expectations) for a quarantined
batch, so the dashboard counts it as a failure; Completed named `AwaitingApproval` for a challenger waiting for
`ctp approve`; Completed otherwise."""

from __future__ import annotations

import logging
from typing import Any

from ctpipeline.core.cycle import CycleResult, final_state
from ctpipeline.core.report import cycle_markdown

log = logging.getLogger(__name__)

NO_BATCH = "no-new-batch"
TAG_PREFIXES = ("pipeline:", "batch:", "outcome:")
MAX_MESSAGE = 4000


def artifact_key(pipeline: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes."""
    return f"{pipeline}-cycle".lower().replace("_", "-").replace(".", "-")


def run_name(pipeline: str, batch: str | None) -> str:
    """`flights-delay/2013-05`: what the flow run of that batch is called in the Prefect UI."""
    return f"{pipeline}/{batch or NO_BATCH}"


class NextRunName:
    """The `flow_run_name` of one flow object that starts many runs (`ctp replay`): Prefect calls it as each run
    begins and gets the name set last, e.g. `flights-delay/2013-05`. One `Flow.with_options` copy then names them
    all: each copy builds the flow's parameter schema again (~80 ms a run)."""

    def __init__(self) -> None:
        self.value = run_name("", None)

    def __call__(self) -> str:
        return self.value


def run_tags(pipeline: str, batch: str | None, outcome: str | None = None) -> list[str]:
    tags = [f"pipeline:{pipeline}", f"batch:{batch or NO_BATCH}"]
    return [*tags, f"outcome:{outcome}"] if outcome else tags


def label_run(pipeline: str, batch: str | None, outcome: str | None = None) -> None:
    """Name the current flow run after its pipeline and batch and tag it (the tags of a deployment or of the caller
    are kept; an earlier outcome tag is replaced). Outside a flow run it does nothing; a failure is only logged."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if not run_id:
        return
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(run_id).tags or []
            kept = [t for t in current if not t.startswith(TAG_PREFIXES)]
            client.update_flow_run(
                run_id, name=run_name(pipeline, batch), tags=[*kept, *run_tags(pipeline, batch, outcome)]
            )
    except Exception as exc:  # a label is cosmetic: never fail a cycle over it
        log.warning("could not name or tag flow run %s: %s", run_id, exc)


def state_message(res: CycleResult, default: str) -> str:
    """The rejection in full: batch, where it went and every failed expectation."""
    if res.status != "quarantined":
        return default
    text = res.reasons[0] if res.reasons else default
    if res.failed_expectations and not any(f in text for f in res.failed_expectations):
        text += "\n" + "\n".join(f"  - {f}" for f in res.failed_expectations)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def publish(pipeline: str, config_hash: str, res: CycleResult) -> Any:
    """The cycle's markdown artifact and labels, then the flow's return value: the result as a dict, or a state
    named Rejected (Failed) / AwaitingApproval (Completed) carrying it."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.states import Completed, Failed

    if res.batch is not None:
        create_markdown_artifact(
            cycle_markdown(pipeline, config_hash, res),
            key=artifact_key(pipeline),
            description=f"{pipeline} batch {res.batch}: {res.status}",
        )
    label_run(pipeline, res.batch, res.status)
    spec = final_state(res)
    if spec is None:
        return res.to_dict()
    state = Failed if res.status == "quarantined" else Completed
    return state(name=spec.name, message=state_message(res, spec.message), data=res.to_dict())


def cycle_result(state: Any) -> dict[str, Any]:
    """The cycle's result from its flow run's final state. A rejected batch (Failed, named Rejected) is a result,
    not an error; any other failed or crashed run raises its exception."""
    if state.is_failed() and state.name == "Rejected":
        data = state.result(raise_on_failure=False)
        if isinstance(data, dict):
            return data
    return state.result(raise_on_failure=True)


def setup_logging() -> None:
    """Importing Prefect sets up its logging (console and API handlers, also for `ctpipeline` loggers named in
    PREFECT_LOGGING_EXTRA_LOGGERS), once per process."""
    import prefect.main  # noqa: F401
