"""Child processes for the benchmarks: started on 127.0.0.1, waited for with a deadline, their memory sampled.

Peak memory of a process tree without psutil: every 0.2 s the RSS of the child and of all its descendants is
summed from ``/proc/<pid>/status`` (the peak of that sum is ``tree_peak_rss_mb``); ``os.wait4`` gives the
kernel's own high-water mark of the largest single process (``max_process_rss_mb``, what ``/usr/bin/time -v``
prints as "Maximum resident set size").
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

__all__ = ["free_port", "run_measured", "start", "stop", "wait_http"]

VENV_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"
QUIET_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TQDM_DISABLE": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree_rss_kb(root: int) -> int:
    """The summed RSS (kB) of process `root` and all its descendants, from /proc."""
    kids, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo += kids.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_measured(cmd: list[str], env: dict, log_path: Path, timeout_s: float) -> dict:
    """Run `cmd` to completion (killed after `timeout_s`): wall seconds, exit code, peak RSS of its tree."""
    peak = [0]
    with log_path.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killed: list[bool] = []

        def kill():
            killed.append(True)
            os.killpg(proc.pid, 9)

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "seconds": round(wall, 2),
        "exit_code": proc.returncode,
        "timed_out": bool(killed),
        "tree_peak_rss_mb": round(peak[0] / 1024, 1),
        "max_process_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def start(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    out = log_path.open("wb")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None, grace_s: float = 10) -> None:
    """Terminate the process group we started (SIGTERM, then SIGKILL after `grace_s`)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)
    except ProcessLookupError:
        pass


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> float:
    """Poll `url` (GET, loopback) until it answers 200; seconds waited. RuntimeError after `timeout_s` or when
    `proc` exits first."""
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")
