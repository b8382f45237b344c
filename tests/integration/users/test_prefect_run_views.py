"""What a replay leaves in Prefect, read back through the Prefect client of a real test server: one flow run per
batch named `<pipeline>/<batch>`, tagged with pipeline, batch and outcome; a rejected batch Failed (state
`Rejected`, the failed expectations in its message) while `ctp run` still exits 3 and `ctp replay` goes on; no
empty flow run after the last batch."""

from __future__ import annotations

import pytest
from users_support import land_generated

from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like, run_ctp, write_pipeline_config

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration

NAME = "users-prefect-views"


def flow_runs(pipeline: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"pipeline:{pipeline}"])),
            sort=FlowRunSort.START_TIME_ASC,
        )


@pytest.mark.slow
def test_replay_names_tags_and_fails_rejected_runs_without_an_empty_last_run(prefect_server, tmp_path):
    cfg = write_pipeline_config(tmp_path, name=NAME, training={"min_train_rows": 500}, triggers={"every_batch": True})
    state = tmp_path / "state"
    common = ["--config", str(cfg), "--state-dir", str(state)]
    p = Pipeline.open(cfg, state)
    land_generated(p, rows=5000, seed=31, months=2)  # 2013-01, 2013-02
    broken = make_flights_like(1500, seed=32, start="2013-03-01").drop(columns=["carrier"])
    landing.write_parquet_atomic(broken, p.landing_dir / "2013-03.parquet")
    land_generated(p, rows=2000, seed=33, months=1, start="2013-04-01")

    rc, out = ctp("replay", *common)
    assert rc == 0, out
    assert "batch 2013-03: quarantined" in out and "batch 2013-04" in out  # the replay went on after the rejection
    runs = flow_runs(NAME)
    assert [r.name for r in runs] == [f"{NAME}/2013-0{i}" for i in (1, 2, 3, 4)]  # no empty run after the last
    by_batch = {r.name.rsplit("/", 1)[1]: r for r in runs}
    for batch, run in by_batch.items():
        assert {f"pipeline:{NAME}", f"batch:{batch}"} <= set(run.tags)
    assert "outcome:accumulating" in by_batch["2013-01"].tags and "outcome:promoted" in by_batch["2013-02"].tags
    rejected = by_batch["2013-03"].state
    assert rejected.type.value == "FAILED" and rejected.name == "Rejected"
    assert "carrier" in rejected.message and "expect_column_to_exist" in rejected.message
    assert "outcome:quarantined" in by_batch["2013-03"].tags
    assert by_batch["2013-04"].state.type.value == "COMPLETED"

    # nothing left: no flow run at all
    rc, out = ctp("replay", *common)
    assert rc == 0 and "nothing to do" in out and len(flow_runs(NAME)) == 4

    # `ctp run` on a rejected batch: exit 3 for scripts, a Failed run for the dashboard
    may = make_flights_like(1500, seed=34, start="2013-05-01").drop(columns=["carrier"])
    landing.write_parquet_atomic(may, p.landing_dir / "2013-05.parquet")
    rc, out = ctp("run", *common)
    assert rc == 3 and "quarantined" in out
    last = flow_runs(NAME)[-1]
    assert last.name == f"{NAME}/2013-05" and last.state.type.value == "FAILED" and last.state.name == "Rejected"
