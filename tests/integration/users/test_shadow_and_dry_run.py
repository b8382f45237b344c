"""Trialling a policy beside the live one: `promotion.mode: shadow` evaluates and registers but never moves an alias
the live pipeline uses, and `ctp run --dry-run` goes up to the decision and writes nothing to the registry, the
batch log or the quarantine. Real MLflow, GX, Evidently; Prefect for the CLI run."""

from __future__ import annotations

import pytest
import yaml
from users_support import land_generated, run_cycle

from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like, run_ctp, write_pipeline_config

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration


def live_then(tmp_path, months: int = 3) -> Pipeline:
    """A pipeline whose first two batches ran live: v1 is champion and challenger."""
    cfg = write_pipeline_config(tmp_path, training={"min_train_rows": 500}, triggers={"every_batch": True})
    p = Pipeline.open(cfg, tmp_path / "state")
    land_generated(p, rows=2500 * months, seed=41, months=months)
    assert run_cycle(p).status == "accumulating"
    assert run_cycle(p).status == "promoted" and p.registry.champion().version == "1"
    return p


def test_shadow_mode_registers_and_records_but_moves_no_live_alias(tmp_path):
    p = live_then(tmp_path)
    d = yaml.safe_load(p.config_file.read_text())
    d["promotion"] = {**d["promotion"], "mode": "shadow", "min_margin": 0.0, "noise_aware": False, "slices": []}
    p.config_file.write_text(yaml.safe_dump(d, sort_keys=False))
    shadow = Pipeline.open(p.config_file, p.paths.root)
    res = run_cycle(shadow)
    assert res.status == "shadow" and res.challenger_version == "2", res
    assert any(r.startswith("shadow mode: the policy would have") for r in res.reasons)
    reg = shadow.registry
    assert reg.champion().version == "1" and reg.get_alias("challenger").version == "1"
    assert reg.get_alias("shadow").version == "2"
    assert reg.get_version_tags(reg.get_version("2"))["ctp.shadow"] in ("would-promote", "would-keep")
    assert [r["to_version"] for r in shadow.ledger.rows()] == ["1"]  # no move recorded
    assert res.record["outcome"] == "shadow" and res.record["verdict"]  # what would have happened, on the run


@pytest.mark.slow
def test_dry_run_decides_but_writes_nothing_to_the_registry_log_or_quarantine(prefect_server, tmp_path):
    p = live_then(tmp_path)
    common = ("--config", str(p.config_file), "--state-dir", str(p.paths.root))
    log_before = p.batch_log.records()
    rc, out = ctp("run", *common, "--dry-run")
    assert rc == 0 and "batch 2013-03: dry-run" in out and "dry run: the policy would" in out, out
    client = p.registry.client.get()
    assert [str(v.version) for v in client.search_model_versions(f"name = '{p.name}'")] == ["1"]
    assert p.registry.champion().version == "1" and p.batch_log.records() == log_before
    run = client.search_runs([p.tracking.ensure_experiment()], "tags.`ctp.dry_run` = 'true'")[0]
    assert run.data.tags["ctp.batch"] == "2013-03" and "challenger_roc_auc" in run.data.metrics
    # a batch that would be rejected: exit 3, and the file stays in the landing folder, unrecorded
    (p.landing_dir / "2013-03.parquet").unlink()
    broken = make_flights_like(1500, seed=42, start="2013-03-01").drop(columns=["carrier"])
    landing.write_parquet_atomic(broken, p.landing_dir / "2013-03.parquet")
    rc, out = ctp("run", *common, "--dry-run")
    assert rc == 3 and "dry run: batch 2013-03 would be rejected" in out
    assert (p.landing_dir / "2013-03.parquet").exists() and not p.quarantine_dir.exists()
    assert p.batch_log.records() == log_before
