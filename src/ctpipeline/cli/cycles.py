"""`ctp land | run | replay | demo | serve`: commands that land data and run cycles."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ctpipeline.cli.common import UsageError, check_config, emit_json, open_pipeline, setup_process
from ctpipeline.errors import CtpError

EXIT_REJECTED = 3


def cmd_land(args) -> int:
    from ctpipeline.core.data import split_batches
    from ctpipeline.store.landing import land, load_source

    p = open_pipeline(args)
    if p.cfg.source is None:
        raise CtpError(f"{args.config}: no 'source' section; drop Parquet batch files into {p.landing_dir} instead")
    t0 = time.perf_counter()
    df = load_source(p.cfg.source, p.cfg.data, p.cfg.config_dir)
    batches = split_batches(df, p.cfg.data)
    written = land(batches, p.landing_dir, overwrite=args.overwrite)
    print(
        f"landed {len(written)} new batch files ({len(batches)} periods, {len(df)} rows) in {p.landing_dir} "
        f"in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr if getattr(args, "json", False) else sys.stdout,
    )
    return 0


def _progress(i: int, n: int | None, res: dict, seconds: float, out) -> None:
    chal = res.get("challenger_metric")
    metric = f" {res['metric']}={chal:.4f}" if chal is not None else ""
    print(
        f"[{i}{f'/{n}' if n else ''}] batch {res['batch']}: {res['status']}{metric} "
        f"(champion v{res.get('champion_version_after') or '-'}, {seconds:.1f}s)",
        file=out,
        flush=True,
    )
    for r in res.get("reasons", []):
        print("      " + r.replace("\n", "\n      "), file=out, flush=True)


def run_cycles(args, paths, n: int | None, trigger: str) -> list[dict]:
    """Run up to n cycles (None: until no batch is left) in this process: one Prefect server start. A flow run is
    started only when a batch is waiting, named after it (`<pipeline>/<batch>`)."""
    from ctpipeline.adapters.prefect.results import NextRunName, cycle_result, run_name
    from ctpipeline.adapters.prefect.server import embedded_flow_settings, still_starting, wait_until_started
    from ctpipeline.flow import continuous_training
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.steps.ingest import next_batch
    from ctpipeline.steps.reports import flush as flush_reports

    out = sys.stderr if args.json else sys.stdout
    p = Pipeline.open(args.config, paths.root)
    if n is None or n > 1:  # many cycles in this process: their reports in one worker process
        from ctpipeline.steps.reports import use_worker_process

        use_worker_process()
    waiting = next_batch(p.landing_dir, p.batch_log) if still_starting() else None
    if waiting is not None:  # the embedded server is not up yet: meanwhile, the first cycle's one-time costs
        from ctpipeline.steps.cycle import warm_up

        warm_up(p, waiting)
    wait_until_started()  # the embedded Prefect server, started by setup_process while the flow was imported
    results: list[dict] = []
    names, flow = NextRunName(), None
    try:
        while n is None or len(results) < n:
            batch = next_batch(p.landing_dir, p.batch_log)
            if batch is None:
                if not results:
                    print("no new batch in the landing folder: nothing to do", file=out)
                break
            t0 = time.perf_counter()
            names.value = run_name(p.name, batch.name)
            if flow is None:  # one copy names every run
                flow = continuous_training.with_options(flow_run_name=names)
            config, dry_run = str(Path(args.config).resolve()), getattr(args, "dry_run", False)
            with embedded_flow_settings():  # no flow-run heartbeats on the embedded server (nothing reads them)
                state = flow(
                    config=config, state_dir=str(paths.root), trigger=trigger, dry_run=dry_run, return_state=True
                )
            res = cycle_result(state)  # a rejected batch ends Failed("Rejected") in Prefect, and is a result here
            if res["status"] == "no-batch":  # another process took it meanwhile
                break
            results.append(res)
            _progress(len(results), n, res, time.perf_counter() - t0, out)
    except Exception:
        flush_reports()
        raise  # an interrupt does not wait: those runs keep their ctp.reports_pending tag
    flush_reports()  # the last runs' reports, drawn after their runs closed (steps.reports.log_after_close)
    return results


def _cycles_json(args, results: list[dict], **extra) -> None:
    emit_json(
        {"pipeline": _name(args), "cycles": [{k: v for k, v in r.items() if k != "record"} for r in results], **extra}
    )


def _name(args) -> str:
    from ctpipeline.config import load_config

    return load_config(args.config).name


def cmd_run(args) -> int:
    check_config(args)
    paths = setup_process(args, flows=True, server=True)
    results = run_cycles(args, paths, 1, args.trigger)
    if args.json:
        _cycles_json(args, results)
    return EXIT_REJECTED if results and results[0]["status"] == "quarantined" else 0


def _print_replay(results: list[dict], granularity: str | None = None) -> None:
    from ctpipeline.core.report import REPLAY_COLUMNS, replay_rows, served_lines, table

    print()
    print(table(replay_rows(results), REPLAY_COLUMNS))
    lines = served_lines(results, granularity)
    if lines:
        print()
        print("\n".join(lines))


def cmd_replay(args) -> int:
    from ctpipeline.core.report import served_comparison

    check_config(args)
    paths = setup_process(args, flows=True, server=True)
    t0 = time.perf_counter()
    results = run_cycles(args, paths, args.batches, "replay")
    if args.json:
        _cycles_json(args, results, summary=served_comparison(results)[1], seconds=round(time.perf_counter() - t0, 1))
        return 0
    if results:
        from ctpipeline.config import load_config

        _print_replay(results, load_config(args.config).data.granularity)
        print(f"\n{len(results)} batches in {time.perf_counter() - t0:.0f}s; state in {paths.root}")
    print("\nLook at the results:")
    print(f"  MLflow UI:  .venv/bin/ctp ui mlflow    (= mlflow ui --backend-store-uri sqlite:///{paths.mlflow_db})")
    print(f"  Prefect UI: .venv/bin/ctp ui prefect   (= PREFECT_HOME={paths.prefect_home} prefect server start)")
    return 0


def cmd_demo(args) -> int:
    args.overwrite = False
    check_config(args)
    setup_process(args, flows=True, server=True)  # first: the embedded Prefect server starts while the data lands
    from ctpipeline.steps.reports import use_worker_process

    use_worker_process()  # the report worker too (it imports Evidently meanwhile)
    cmd_land(args)
    return cmd_replay(args)


def cmd_release(args) -> int:
    """Move a quarantined batch back to the landing folder, recorded in the batch log; the next run processes it."""
    from ctpipeline.steps.ingest import release

    p = open_pipeline(args, read_only=True)
    try:
        source, target = release(args.batch, p.quarantine_dir, p.landing_dir, p.batch_log)
    except LookupError as exc:
        raise UsageError(str(exc.args[0])) from None
    except FileExistsError:
        raise UsageError(
            f"{p.landing_dir / (args.batch + '.parquet')} exists already: the landing folder holds a batch of that "
            "name (move it away first, or let the next run process it)"
        ) from None
    print(
        f"{p.name}: batch {args.batch} released from {source} to {target}; the next run processes it "
        f"(its quarantine report stays in {p.quarantine_dir})"
    )
    return 0


def cmd_serve(args) -> int:
    setup_process(args, flows=True)  # first: Prefect sets up its logging when the flow is imported, and must find
    # PREFECT_LOGGING_EXTRA_LOGGERS set by then (or our lines print twice: our handler and Prefect's root one)
    from ctpipeline.adapters.prefect.deployments import serve_deployments
    from ctpipeline.flow import continuous_training

    try:
        serve_deployments(continuous_training, args.config, args.state_dir, args.cron, limit=args.limit)
    except KeyboardInterrupt:
        pass
    return 0
