"""The state folder under bad conditions: release from quarantine, reports never overwritten, files that are not
batches, unreadable files, a state folder that cannot be created, an MLflow database that is corrupt or locked,
and the ledger's order of champions."""

import os
import sqlite3

import pandas as pd
import pytest

from ctpipeline.store import landing
from ctpipeline.store.ledger import Ledger, champion_stack
from ctpipeline.store.state import BatchLog, sqlite_problem, state_dir_problem


def _land(tmp_path, name="2021-01", rows=3):
    path = tmp_path / "landing" / f"{name}.parquet"
    landing.write_parquet_atomic(pd.DataFrame({"x": range(rows)}), path)
    return landing.landed_batches(tmp_path / "landing")[0]


def test_a_released_batch_is_pending_again_and_its_reports_are_all_kept(tmp_path):
    from ctpipeline.steps.ingest import quarantine, release

    log, qdir, ldir = BatchLog(tmp_path / "b.jsonl"), tmp_path / "q", tmp_path / "landing"
    batch = _land(tmp_path)
    quarantine(batch, qdir, log, error="first reason")
    assert (batch.name, batch.sha256) in log.processed()
    src, dst = release("2021-01", qdir, ldir, log)
    assert dst == ldir / "2021-01.parquet" and dst.exists() and not src.exists()
    assert (batch.name, batch.sha256) not in log.processed() and log.records()[-1]["status"] == "released"
    assert (qdir / "2021-01.gx.json").exists()  # the report stays
    again = landing.landed_batches(ldir)[0]
    assert again.sha256 == batch.sha256
    quarantine(again, qdir, log, error="second reason")
    reports = sorted(p.name for p in qdir.glob("*.gx.json"))
    assert len(reports) == 2  # the first report was not overwritten
    assert "first reason" in (qdir / "2021-01.gx.json").read_text()
    release("2021-01", qdir, ldir, log)  # the latest quarantined copy comes back
    assert "second reason" not in (qdir / "2021-01.gx.json").read_text() and (ldir / "2021-01.parquet").exists()


def test_release_refuses_unknown_batches_and_never_overwrites_landing(tmp_path):
    from ctpipeline.steps.ingest import quarantine, release

    log, qdir, ldir = BatchLog(tmp_path / "b.jsonl"), tmp_path / "q", tmp_path / "landing"
    batch = _land(tmp_path)
    quarantine(batch, qdir, log, error="bad")
    with pytest.raises(LookupError, match="no quarantined batch named '2021-02'.*quarantined: 2021-01"):
        release("2021-02", qdir, ldir, log)
    _land(tmp_path)  # a new file of the same name landed meanwhile
    with pytest.raises(FileExistsError):
        release("2021-01", qdir, ldir, log)
    assert (qdir / "2021-01.parquet").exists()  # nothing moved, nothing lost


def test_files_that_are_not_batches_are_named_and_unreadable_ones_listed(tmp_path):
    ldir = tmp_path / "landing"
    _land(tmp_path)
    (ldir / "2021-02.csv").write_text("x\n1\n")
    (ldir / "notes.txt").write_text("hello")
    (ldir / "2021-03.parquet").symlink_to(tmp_path / "gone.parquet")  # dangling: cannot be read
    (ldir / ".2021-04.parquet.tmp").write_text("")  # a write in progress: not a stray file
    assert landing.stray_files(ldir) == ["2021-02.csv", "notes.txt"]
    batches = {b.name: b for b in landing.landed_batches(ldir)}
    assert set(batches) == {"2021-01", "2021-03"} and batches["2021-03"].sha256.startswith("unreadable-")
    with pytest.raises(Exception, match="cannot read"):
        landing.read_batch(batches["2021-03"])


@pytest.mark.parametrize(
    "content, reason",
    [(b"", r"empty \(0 bytes\)"), (b"x,y\n1,2\n", "not a Parquet file"), (None, "truncated or corrupt")],
)
def test_unreadable_batch_files_say_why(tmp_path, content, reason):
    from ctpipeline.errors import DataError

    batch = _land(tmp_path, rows=100)
    data = batch.path.read_bytes()
    batch.path.write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(DataError, match=reason):
        landing.read_batch(batch)


def test_duplicated_column_names_are_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ctpipeline.errors import DataError

    path = tmp_path / "2021-01.parquet"
    pq.write_table(pa.table([pa.array([1]), pa.array([2])], names=["x", "x"]), path)
    with pytest.raises(DataError, match=r"columns \['x'\] appear more than once"):
        landing.read_batch(landing.Batch("2021-01", path, "s"))


def test_state_folder_under_a_file_or_read_only_is_reported(tmp_path):
    (tmp_path / "afile").write_text("")
    assert "cannot create the state folder" in state_dir_problem(tmp_path / "afile" / "state")
    assert state_dir_problem(tmp_path / "fine") is None and (tmp_path / "fine").is_dir()
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert "cannot write" in state_dir_problem(ro)


def test_corrupt_and_locked_sqlite_files_are_reported(tmp_path):
    db = tmp_path / "mlflow.db"
    assert sqlite_problem(db) is None  # absent: created later
    db.write_bytes(b"this is not a database, it is just some text" * 20)
    assert "not a readable SQLite database" in sqlite_problem(db)
    db.unlink()
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    assert sqlite_problem(db) is None
    con.execute("BEGIN EXCLUSIVE")
    try:
        assert "locked" in sqlite_problem(db, timeout=0.2)
    finally:
        con.rollback()
        con.close()


def test_champion_stack_steps_back_through_rollbacks_instead_of_toggling():
    def move(action, frm, to):
        return {"action": action, "from_version": frm, "to_version": to}

    moves = [move("promote", None, "1"), move("promote", "1", "2"), move("approve", "2", "4")]
    assert champion_stack(moves) == ["1", "2", "4"]
    moves.append(move("reconcile", "4", "5"))
    assert champion_stack(moves)[-2:] == ["4", "5"]
    moves.append(move("rollback", "5", "4"))
    assert champion_stack(moves) == ["1", "2", "4"]  # a second rollback goes to 2, not back to 5
    moves.append(move("rollback", "4", "7"))  # --to-version 7: not an earlier champion
    assert champion_stack(moves) == ["1", "2", "4", "7"]


def test_ledger_intent_rows_are_not_moves(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    common = dict(reason="r", trigger="t", run_id="run")
    ledger.append(action="promote", from_version=None, to_version="1", **common, intent=True)
    ledger.append(action="promote", from_version=None, to_version="1", **common)
    ledger.append(action="promote", from_version="1", to_version="2", **common, intent=True)
    assert [r["to_version"] for r in ledger.rows()] == ["1"] and ledger.champion() == "1"
    assert ledger.intent_for("2")["from_version"] == "1" and ledger.intent_for("1") is None
    assert len(ledger.all_rows()) == 3
