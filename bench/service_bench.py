"""The 12-month replay as a user runs it, and the webhook receiver under load: absolute figures, no baseline.

* **replay**: ``ctp demo --config configs/flights.yaml --state-dir <tmp>`` (what ``make demo`` runs) in a child
  process: wall time from start to exit, peak RSS of its process tree and of its largest process;
* **webhook**: a real Prefect server (``prefect server start`` on 127.0.0.1, SQLite under a temporary
  PREFECT_HOME) holding a deployment ``continuous-training/flights-delay`` that no runner serves (a created run
  stays Scheduled), and ``ctp webhook serve`` in front of it. First a storm: 1,000 signed alerts for the model
  (100 copies of each of 10 alerts), 50 at a time; it must start exactly one flow run (counted in the answers and
  on the Prefect server). Then the steady state: signed alerts sent open-loop at ``rate`` per second for
  ``seconds`` (each with its own dedupe key, so each one goes through the whole admission; they meet the
  model's cooldown), latency measured from each request's scheduled send time (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import time
from pathlib import Path

from procs import QUIET_ENV, VENV_BIN, free_port, run_measured, start, stop, wait_http

__all__ = ["replay", "webhook"]

ROOT = Path(__file__).resolve().parents[1]


def replay(work_dir: Path, months: int | None, timeout_s: float, log=print) -> dict:
    state = work_dir / "replay-state"
    cmd = [str(VENV_BIN / "ctp"), "demo", "--config", str(ROOT / "configs" / "flights.yaml"), "--state-dir", str(state)]
    if months:
        cmd += ["-n", str(months)]
    env = {**os.environ, **QUIET_ENV}
    env.pop("PREFECT_API_URL", None)  # the demo's own embedded Prefect, as `make demo` runs it
    log(f"  replay: {' '.join(cmd[1:])}")
    out = run_measured(cmd, env, work_dir / "replay.log", timeout_s)
    out.update(months=months or 12, command=" ".join(["ctp", *cmd[1:]]).replace(str(state), "<tmp>"))
    if out["exit_code"] != 0:
        out["log_tail"] = (work_dir / "replay.log").read_text(errors="replace")[-2000:]
    return out


def _deployment(api_url: str) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        flow_id = client.create_flow_from_name("continuous-training")
        client.create_deployment(flow_id=flow_id, name="flights-delay", parameters={"trigger": "schedule"})


def _flow_runs(api_url: str) -> int:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with SyncPrefectClient(api_url) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["ctp-webhook"])))
    return len(runs)


async def _post(client, url: str, secret: bytes, payload: dict) -> tuple[int, dict | None]:
    from ctpipeline.webhook.auth import signed_headers

    body = json.dumps(payload).encode()
    resp = await client.post(url, content=body, headers=signed_headers(secret, body))
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, None


async def _storm(url: str, secret: bytes, n: int, concurrency: int) -> dict:
    import httpx

    payloads = [{"model": "flights-delay", "reason": "storm", "dedupe_key": f"storm-{i % 10}"} for i in range(n)]
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(payload):
            async with sem:
                return await _post(client, url, secret, payload)

        t0 = time.perf_counter()
        answers = await asyncio.wait_for(asyncio.gather(*(one(p) for p in payloads)), timeout=300)
        seconds = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for code, body in answers:
        for run in (body or {}).get("runs", []) if code in (202, 503) else []:
            statuses[run.get("status", "?")] = statuses.get(run.get("status", "?"), 0) + 1
        if code not in (202,):
            statuses[f"http {code}"] = statuses.get(f"http {code}", 0) + 1
    return {"alerts": n, "concurrency": concurrency, "seconds": round(seconds, 2), "answers": statuses}


async def _load(url: str, secret: bytes, rate: float, seconds: float) -> dict:
    import httpx

    n = int(rate * seconds)
    latencies: list[float] = []
    codes: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=100)) as client:
        t0 = time.perf_counter()

        async def one(i: int):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            payload = {"model": "flights-delay", "reason": "steady", "dedupe_key": f"steady-{i}"}
            try:
                code, _ = await _post(client, url, secret, payload)
            except httpx.HTTPError:
                code = 0
            latencies.append(time.perf_counter() - due)
            codes[code] = codes.get(code, 0) + 1

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), timeout=seconds + 60)
        elapsed = time.perf_counter() - t0
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {
        "requests": n,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(n / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p90_ms": round(q[89] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
        "max_ms": round(lat[-1] * 1000, 2),
        "http_codes": {str(k): v for k, v in sorted(codes.items())},
    }


def webhook(work_dir: Path, rate: float, seconds: float, storm: int, log=print) -> dict:
    prefect_port, hook_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    secret = secrets.token_hex(32)
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(work_dir / "prefect-home"), "PREFECT_API_URL": api_url}
    env["CTP_WEBHOOK_SECRET"] = secret
    settings = work_dir / "webhook.yaml"
    settings.write_text(
        "models:\n  flights-delay: continuous-training/flights-delay\n"
        f"state_path: {work_dir / 'webhook-state.db'}\nhost: 127.0.0.1\nport: {hook_port}\n"
    )
    server = receiver = None
    try:
        server = start(
            [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
            env,
            work_dir / "prefect-server.log",
        )
        waited = wait_http(f"{api_url}/health", 180, server)
        log(f"  webhook: Prefect server up in {waited:.1f} s")
        os.environ["PREFECT_API_URL"], saved = api_url, os.environ.get("PREFECT_API_URL")
        try:
            _deployment(api_url)
            receiver = start(
                [str(VENV_BIN / "ctp"), "webhook", "serve", "--config", str(settings)], env, work_dir / "webhook.log"
            )
            waited = wait_http(f"http://127.0.0.1:{hook_port}/healthz", 120, receiver)
            log(f"  webhook: receiver up in {waited:.1f} s")
            url = f"http://127.0.0.1:{hook_port}/alerts"
            storm_out = asyncio.run(_storm(url, secret.encode(), storm, 50))
            storm_out["flow_runs_on_prefect"] = _flow_runs(api_url)
            runs = storm_out["flow_runs_on_prefect"]
            log(f"  webhook: storm of {storm} alerts: {storm_out['answers']}, {runs} run(s) on Prefect")
            load_out = asyncio.run(_load(url, secret.encode(), rate, seconds))
            log(f"  webhook: {rate:g}/s for {seconds:g} s: p50 {load_out['p50_ms']} ms, p99 {load_out['p99_ms']} ms")
        finally:
            if saved is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = saved
    finally:
        stop(receiver)
        stop(server)
    return {"storm": storm_out, "load": load_out}
