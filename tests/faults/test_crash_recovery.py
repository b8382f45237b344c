"""SIGKILL of the real `ctp run` process at each stage of a cycle, then the next run; and two cycles at once.

Real processes (`python -m ctpipeline run`), the real ephemeral Prefect server, a real MLflow SQLite store. The kill
comes from the process itself at a named checkpoint (``ctpipeline.faults``, env ``CTP_FAULT_AT``): no ``finally``
block, no atexit handler runs, as in a power cut. After each kill: exactly one ``champion`` that loads and
predicts, no batch processed twice, no month lost, at most the killed run itself left RUNNING (the next cycle
closes it KILLED with a reason), and the next run is neither wedged nor silent: it reclaims the training slot.
"""

from __future__ import annotations

import json
import time

import pytest
from crash_support import (
    Case,
    assert_batches_once,
    assert_champion_serves,
    assert_ledger_agrees,
    champion_versions,
    ctp_env,
    mlflow_runs,
    prepare,
    reap,
)

pytestmark = pytest.mark.slow

# in the order a cycle reaches them; the last two need a promotion (POLICY in crash_support makes it happen)
STAGES = ["ingest", "validated", "trained", "backtested", "after-register", "after-champion-alias"]
RUN_OPEN = {"trained", "backtested", "after-register", "after-champion-alias"}  # the cycle's MLflow run exists
EVIDENCE: dict[str, dict] = {}  # what the kill tests saw of the ledger, for the ledger test below


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    c = prepare(tmp_path_factory.mktemp("crash"))
    yield c
    c.stop_all()
    reap(c)


def _unprocessed(case: Case) -> list[str]:
    done = {r["batch"] for r in case.batch_records() if r.get("status") in ("accepted", "rejected")}
    return [b for b in case.landed() if b not in done]


def _running(case: Case) -> list:
    return [r for r in mlflow_runs(case) if r.status == "RUNNING"]


def _cycle(proc) -> dict:
    return json.loads(proc.out)["cycles"][0]


def _ledger_evidence(case: Case, stage: str) -> None:
    """What `ctp status` says right after the kill, and whether the ledger agrees once the next run is done."""
    st = case.ctp("status")
    EVIDENCE[stage] = {"status": st.out + st.err, "ledger": case.ledger(), "champion": champion_versions(case)}


def test_sigkill_at_each_stage_of_a_cycle_then_the_next_run_recovers(case):
    case.restore()
    batch = _unprocessed(case)[0]
    kills_with_open_run = 0
    for i, stage in enumerate(STAGES):
        r = case.ctp("run", CTP_FAULT_AT=stage)
        ctx = f"after SIGKILL at {stage!r}"
        assert r.killed and f"checkpoint {stage!r}" in r.err, r.tail()
        if i:  # the previous kill left the slot taken: this run reclaimed it at once, without a silent wait
            assert "reclaiming the training slot train-flights-delay" in r.err, r.tail()
        assert "waiting for the training slot" not in r.err, r.tail()
        assert_champion_serves(case, ctx)
        assert_batches_once(case, ctx)
        assert batch in _unprocessed(case), f"{ctx}: {batch} recorded although its cycle died"
        kills_with_open_run += stage in RUN_OPEN
        assert len(_running(case)) == (1 if stage in RUN_OPEN else 0), f"{ctx}: {_running(case)}"
        if stage == "after-champion-alias":
            _ledger_evidence(case, stage)

    r = case.ctp("run", "--json")
    assert r.rc == 0, r.tail()
    assert "reclaiming the training slot" in r.err and "marked Crashed" in r.err, r.tail()
    assert _cycle(r)["batch"] == batch and batch not in _unprocessed(case)
    assert_champion_serves(case, "after the recovery run")
    assert_batches_once(case, "after the recovery run")
    assert not _running(case)
    killed = [x for x in mlflow_runs(case) if x.status == "KILLED"]
    assert len(killed) == kills_with_open_run == 4
    assert all("died" in x.tags.get("ctp.killed_reason", "") for x in killed)
    assert all(x.tags.get("ctp.status") == "killed" for x in killed)
    EVIDENCE["after-champion-alias"]["after_next_run"] = {"ledger": case.ledger(), "champion": champion_versions(case)}


@pytest.mark.parametrize("stage", ["jsonl-write:ledger", "jsonl-write:batches"])
def test_sigkill_during_the_ledger_and_batch_log_writes(case, stage):
    case.restore()
    batch = _unprocessed(case)[0]
    r = case.ctp("run", CTP_FAULT_AT=stage)
    assert r.killed and f"checkpoint {stage!r}" in r.err, r.tail()
    assert_champion_serves(case, f"after SIGKILL at {stage}")
    assert batch in _unprocessed(case)  # the record of the batch never reached the file: picked up again
    if stage == "jsonl-write:ledger":
        _ledger_evidence(case, stage)
    # a write torn by a crash (half a row, no newline) must not break the next append or the readers
    with open(case.state / "pipelines" / "flights-delay" / "batches.jsonl", "ab") as f:
        f.write(b'{"batch": "2013-0')
    nxt = case.ctp("run", "--json")
    assert nxt.rc == 0, nxt.tail()
    assert _cycle(nxt)["batch"] == batch and batch not in _unprocessed(case)
    assert_champion_serves(case, f"after the run that followed the kill at {stage}")
    assert_batches_once(case, f"after the run that followed the kill at {stage}")
    assert not _running(case)
    if stage == "jsonl-write:ledger":
        EVIDENCE[stage]["after_next_run"] = {"ledger": case.ledger(), "champion": champion_versions(case)}
    else:  # the ledger was written before the kill: it agrees with the registry throughout
        assert_ledger_agrees(case, f"after the kill at {stage} and the next run")


@pytest.mark.parametrize("stage", ["after-champion-alias", "jsonl-write:ledger"])
def test_the_ledger_agrees_with_the_registry_after_a_kill_between_alias_and_ledger(stage):
    seen = EVIDENCE.get(stage)
    if not seen or "after_next_run" not in seen:
        pytest.skip(f"runs with the kill tests above (no evidence recorded for {stage})")
    after = seen["after_next_run"]  # the next run recorded the alias move the killed one could not write
    repaired = bool(after["ledger"]) and after["ledger"][-1]["to_version"] == after["champion"][0]
    assert repaired, f"ctp status said:\n{seen['status']}\nledger after the next run: {after}"


def _wait_for(predicate, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.5)


def _lock_holder(case: Case) -> dict:
    try:
        return json.loads((case.state / "pipelines" / "flights-delay" / "train.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def test_two_cycles_at_once_one_waits_one_is_refused_and_nothing_is_promoted_twice(case):
    case.restore()
    first, second = _unprocessed(case)[:2]
    a = case.start("run", "--json", env=ctp_env(**_paused(case, "slot-acquired:300")))
    _wait_for(lambda: _lock_holder(case).get("pid") == a[0].pid, 300, "the first cycle to hold the slot")
    b = case.start("run", env=ctp_env(CTP_SLOT_MAX_WAIT_SECONDS="4"))  # refused after 4 s
    c = case.start("run", "--json")  # waits, then runs the next batch
    rb = case.wait(b)
    _wait_for(lambda: "waiting for the training slot" in c[1].err, 300, "the third cycle to wait")
    _release(case)
    assert rb.rc == 1, rb.tail()
    last = _error_line(rb)
    assert last.startswith("error: gave up waiting for the training slot train-flights-delay"), rb.tail()
    assert f"pid {a[0].pid}" in last and "waiting for the training slot" in rb.err, rb.tail()
    ra, rc_ = case.wait(a), case.wait(c)
    assert ra.rc == 0 and rc_.rc == 0, ra.tail() + rc_.tail()
    assert f"held by pid {a[0].pid}" in rc_.err, rc_.tail()  # the wait said what it waited for
    assert (_cycle(ra)["batch"], _cycle(rc_)["batch"]) == (first, second)
    assert_batches_once(case, "after two cycles at once")
    moves = case.ledger()
    for before, after in zip(moves, moves[1:], strict=False):  # a chain: each move starts where the last ended
        assert after["from_version"] == before["to_version"], moves
    assert_ledger_agrees(case, "after two cycles at once")
    assert_champion_serves(case, "after two cycles at once")


def test_rollback_during_a_decision_is_never_overwritten(case):
    """A rollback while a cycle evaluates its challenger against the champion: the cycle's compare-and-swap sees
    that the champion moved and does not promote (no lost update); the rollback stands."""
    case.restore()
    x = champion_versions(case)[0]
    y = "1" if x != "1" else "2"
    a = case.start("run", "--json", env=ctp_env(**_paused(case, "backtested:300")))
    _wait_for(lambda: "pausing" in a[1].err, 300, "the cycle to reach its decision")
    rb = case.ctp("rollback", "--to-version", y, "--reason", "bad model in production")
    _release(case)
    assert rb.rc == 0, rb.tail()
    ra = case.wait(a)
    assert ra.rc == 0, ra.tail()
    res = _cycle(ra)
    assert res["status"] != "promoted" and champion_versions(case) == [y], (res, case.ledger())
    if res["verdict"] == "promote":  # it would have promoted: the swap saw the rollback and stood down
        assert any("moved" in reason for reason in res["reasons"]), res["reasons"]
    last = case.ledger()[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("rollback", x, y)
    assert_champion_serves(case, "after a rollback during a decision")


def test_a_rollback_waits_for_a_promotion_in_flight_and_goes_back_to_the_replaced_champion(case):
    """The champion alias moved, `previous` and the ledger row not yet written: a rollback at that moment must not
    read the stale `previous` (the bug of v5 -> v2 instead of v4). It waits for the promotion's lock."""
    case.restore()
    x = champion_versions(case)[0]
    a = case.start("run", "--json", env=ctp_env(**_paused(case, "after-champion-alias:300")))
    _wait_for(lambda: "pausing" in a[1].err or a[0].poll() is not None, 300, "the promotion to move the alias")
    assert a[0].poll() is None, "the cycle did not promote: " + a[1].err[-2000:]
    rb_started = case.start("rollback", "--reason", "rollback during a promotion")
    _wait_for(lambda: "waiting for" in rb_started[1].err, 300, "the rollback to wait for the promotion's lock")
    _release(case)
    rb = case.wait(rb_started)
    ra = case.wait(a)
    assert ra.rc == 0 and rb.rc == 0, ra.tail() + rb.tail()
    z = _cycle(ra)["challenger_version"]
    lock = case.state / "pipelines" / "flights-delay" / "champion.lock"
    assert f"waiting for {lock}, held by pid {a[0].pid}" in rb.err, rb.tail()  # the promotion's lock
    moves = [(m["action"], m["from_version"], m["to_version"]) for m in case.ledger()[-2:]]
    assert moves == [("promote", x, z), ("rollback", z, x)], case.ledger()
    assert champion_versions(case) == [x]
    assert_champion_serves(case, "after a rollback during a promotion")


def _paused(case: Case, pause: str) -> dict[str, str]:
    """The environment that holds a `ctp` child at a checkpoint until `_release` (or the pause's seconds)."""
    release = case.root / "release"
    release.unlink(missing_ok=True)
    return {"CTP_FAULT_PAUSE": pause, "CTP_FAULT_RELEASE": str(release)}


def _release(case: Case) -> None:
    (case.root / "release").touch()


def _error_line(proc) -> str:
    """The CLI's one `error:` line (Prefect may log a line or two after it while it stops its server)."""
    lines = [x for x in proc.err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, proc.tail()
    return lines[0]


def _unchanged(case: Case, before: tuple) -> None:
    assert (champion_versions(case), case.batch_records(), case.ledger(), case.landed()) == before
    assert not list((case.state / "quarantine").rglob("*.parquet")), "nothing may be quarantined"


def test_mlflow_server_unreachable_fails_clearly_in_bounded_time(case):
    """MLFLOW_TRACKING_URI at a closed loopback port: MLflow's bounded retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    _BACKOFF_FACTOR, _TIMEOUT), then one `error:` line naming the store, exit 1; nothing recorded or promoted."""
    from conftest import free_port

    case.restore()
    before = (champion_versions(case), case.batch_records(), case.ledger(), case.landed())
    uri = f"http://127.0.0.1:{free_port()}"
    r = case.ctp(
        "run",
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="2",
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1",
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
    )
    assert r.rc == 1, r.tail()
    assert _error_line(r).startswith("error: MLflow") and uri in _error_line(r), r.tail()
    _unchanged(case, before)
    assert r.seconds < 240, f"{r.seconds:.0f} s"


def test_prefect_api_unreachable_fails_clearly_in_bounded_time(case):
    from conftest import free_port

    case.restore()
    before = (champion_versions(case), case.batch_records(), case.ledger(), case.landed())
    url = f"http://127.0.0.1:{free_port()}/api"
    r = case.ctp("run", PREFECT_API_URL=url)
    assert r.rc == 1, r.tail()
    assert _error_line(r).startswith(f"error: the Prefect API at {url} cannot be used"), r.tail()
    assert "Traceback" not in r.err, r.tail()
    _unchanged(case, before)
    assert r.seconds < 120, f"{r.seconds:.0f} s"


def _mount_full_tmpfs(folder, ballast_name: str = ".ballast"):
    """Replace `folder` by a tmpfs holding the same files and no free space: the kernel's ENOSPC on that store
    only (the SQLite databases elsewhere keep working), as when the artifact disk fills up."""
    import os
    import shutil
    import subprocess

    from conftest import require_binary

    mount = require_binary("mount")
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full test needs root to mount a tmpfs (CI runs as root)")
        pytest.skip("needs root to mount a small tmpfs")
    aside = folder.with_name(folder.name + ".orig")
    folder.rename(aside)
    folder.mkdir()
    used = sum(p.stat().st_size for p in aside.rglob("*") if p.is_file())
    subprocess.run([mount, "-t", "tmpfs", "-o", f"size={used + 4 * 1024 * 1024}", "tmpfs", str(folder)], check=True)
    shutil.copytree(aside, folder, dirs_exist_ok=True, symlinks=True)
    with open(folder / ballast_name, "wb") as f:  # fill it up
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return folder / ballast_name


def test_disk_full_on_the_artifact_store_fails_the_cycle_cleanly_and_the_next_run_completes(case):
    import subprocess

    case.restore()
    artifacts = case.state / "mlartifacts"
    before = (champion_versions(case), case.batch_records(), case.ledger(), case.landed())
    batch = _unprocessed(case)[0]
    ballast = _mount_full_tmpfs(artifacts)
    try:
        r = case.ctp("run")
        assert r.rc == 1, r.tail()
        assert _error_line(r).startswith("error:") and "No space left on device" in _error_line(r), r.tail()
        _unchanged(case, before)
        assert_champion_serves(case, "with the artifact store full")
        assert not _running(case)  # the failed cycle's run is closed FAILED, not left RUNNING
        ballast.unlink()  # space again: the batch is picked up again and processed
        nxt = case.ctp("run", "--json")
        assert nxt.rc == 0 and _cycle(nxt)["batch"] == batch, nxt.tail()
        assert_champion_serves(case, "after the disk was freed")
    finally:
        subprocess.run(["umount", str(artifacts)], check=False)
