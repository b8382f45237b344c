"""How a finished cycle shows in Prefect: a markdown artifact, and a named state for rejections and waits."""

from __future__ import annotations

from typing import Any

from ctpipeline.core.cycle import CycleResult, final_state
from ctpipeline.core.report import cycle_markdown


def artifact_key(pipeline: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes."""
    return f"{pipeline}-cycle".lower().replace("_", "-").replace(".", "-")


def publish(pipeline: str, config_hash: str, res: CycleResult) -> Any:
    """The cycle's markdown artifact, then the flow's return value: the result as a dict, or a Completed state
    named Rejected / AwaitingApproval carrying it."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.states import Completed

    if res.batch is not None:
        create_markdown_artifact(
            cycle_markdown(pipeline, config_hash, res),
            key=artifact_key(pipeline),
            description=f"{pipeline} batch {res.batch}: {res.status}",
        )
    spec = final_state(res)
    if spec is None:
        return res.to_dict()
    return Completed(name=spec.name, message=spec.message, data=res.to_dict())


def setup_logging() -> None:
    """Importing Prefect sets up its logging (console and API handlers, also for `ctpipeline` loggers named in
    PREFECT_LOGGING_EXTRA_LOGGERS), once per process."""
    import prefect.main  # noqa: F401
