"""The building blocks of the crash tests, fast: the checkpoint kills for real, a lock dies with its holder, the slot
settings refuse bad values. No Prefect, no MLflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ctpipeline import faults
from ctpipeline.adapters.prefect.holders import SlotSettings
from ctpipeline.errors import ConfigError
from ctpipeline.locks import LocalLock, describe_holder, serialized


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_checkpoint_does_nothing_unless_named(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    faults.checkpoint("trained")  # still alive
    monkeypatch.setenv(faults.ENV, "backtested,after-register")
    faults.checkpoint("trained")


def test_a_named_checkpoint_sigkills_the_process_at_the_nth_time():
    code = """
        from ctpipeline import faults
        for i in range(5):
            print(i, flush=True)
            faults.checkpoint("trained")
        print("survived", flush=True)
    """
    r = _python(code, CTP_FAULT_AT="trained@3")
    assert r.returncode == -signal.SIGKILL
    assert r.stdout.split() == ["0", "1", "2"]
    assert "SIGKILL at checkpoint 'trained'" in r.stderr
    assert _python(code, CTP_FAULT_AT="validated").stdout.split()[-1] == "survived"


def test_a_pause_sleeps_at_the_checkpoint():
    t0 = time.monotonic()
    code = "from ctpipeline import faults; faults.checkpoint('slot-acquired')"
    r = _python(code, CTP_FAULT_PAUSE="slot-acquired:1.5")
    assert r.returncode == 0 and time.monotonic() - t0 >= 1.5 and "pausing 1.5 s" in r.stderr


def test_a_pause_ends_when_its_release_file_appears(tmp_path):
    release = tmp_path / "release"
    code = "from ctpipeline import faults; faults.checkpoint('slot-acquired'); print('went on', flush=True)"
    env = {**os.environ, "CTP_FAULT_PAUSE": "slot-acquired:120", "CTP_FAULT_RELEASE": str(release)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    assert proc.poll() is None  # still paused
    t0 = time.monotonic()
    release.touch()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"went on" in out and time.monotonic() - t0 < 30


def test_the_local_lock_dies_with_its_holder_even_by_sigkill(tmp_path):
    path = tmp_path / "train.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from ctpipeline.locks import LocalLock, holder_record\n"
            f"lock = LocalLock(Path({str(path)!r})); assert lock.try_acquire()\n"
            "lock.write(holder_record(flow_run='x'))\n"
            "print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    lock = LocalLock(path)
    assert not lock.try_acquire()
    assert describe_holder(lock.holder()).startswith(f"pid {holder.pid} on ")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock.try_acquire()  # the kernel dropped it: no stale lock file to clean up
    assert "released_at" not in lock.holder()  # and the record says its holder never released it
    lock.release({"released_at": "now"})
    assert json.loads(path.read_text()) == {"released_at": "now"}


def test_serialized_holds_the_lock_for_the_call(tmp_path):
    path = tmp_path / "champion.lock"
    seen = []

    @serialized(lambda p: p, "moving the alias", max_wait=0.5)
    def move(p):
        other = LocalLock(path)
        seen.append(other.try_acquire())  # held by this call
        return "moved"

    assert move(path) == "moved" and seen == [False]
    outer = LocalLock(path)
    assert outer.try_acquire()
    with pytest.raises(TimeoutError, match="moving the alias"):
        move(path)
    outer.release()


@pytest.mark.parametrize(
    "env, problem",
    [
        ({"CTP_SLOT_MAX_WAIT_SECONDS": "soon"}, "CTP_SLOT_MAX_WAIT_SECONDS"),
        ({"CTP_SLOT_LOG_SECONDS": "-1"}, "CTP_SLOT_LOG_SECONDS"),
        ({"CTP_SLOT_LEASE_SECONDS": "inf"}, "CTP_SLOT_LEASE_SECONDS"),
        ({"CTP_SLOT_LEASE_SECONDS": "10"}, "at least 60"),
    ],
)
def test_bad_slot_settings_are_configuration_errors(env, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        SlotSettings.from_env(env)
    assert info.value.exit_code == 2


def test_slot_settings_from_the_environment():
    s = SlotSettings.from_env({"CTP_SLOT_MAX_WAIT_SECONDS": "30", "CTP_SLOT_LOG_SECONDS": "2"})
    assert (s.max_wait, s.log_every, s.lease) == (30.0, 2.0, 60.0)
    assert SlotSettings.from_env({}) == SlotSettings()


def test_serialized_is_reentrant_in_one_thread(tmp_path):
    """rollback() holds the champion lock and calls promote(), which takes the same lock: no deadlock."""
    path = tmp_path / "champion.lock"

    @serialized(lambda: path, "inner", max_wait=1)
    def inner():
        return "inner"

    @serialized(lambda: path, "outer", max_wait=1)
    def outer():
        return inner()

    assert outer() == "inner"
    other = LocalLock(path)
    assert other.try_acquire()  # released at the end of the outer call
    other.release()
