"""One process of the stack: started in a session of its own (so its whole group can be signalled), its output
appended to ``logs/<name>.log``, its pid and kernel start time in ``run/<name>.pid`` (a recycled pid is never
taken for ours), waited for until healthy within a bounded time, and stopped with its whole process tree
(TERM, or the service's own stop signal, then KILL after a timeout). Linux only: identities come from /proc.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ctpipeline.errors import CtpError
from ctpipeline.stack.layout import HOST, StackPaths

TAIL_LINES = 15


class StartError(CtpError):
    """A process of the stack could not be started or did not become healthy (exit code 1)."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int | None = None
    user: tuple[int, int] | None = None  # (uid, gid) to run as; None: as ourselves
    stop_signal: int = signal.SIGTERM
    group_signal: bool = True  # False: signal the leader only (PostgreSQL shuts its children down itself)
    mask: dict[str, str] = field(default_factory=dict)  # secrets never shown in an error's log tail
    umask: int = 0o077  # what a server writes (auth DB, artifacts, Prefect's home) is its owner's only; -1: ours


@dataclass(frozen=True)
class PidRecord:
    name: str
    pid: int
    start_ticks: int
    port: int | None
    started_at: float
    stop_signal: int
    group_signal: bool


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ..., starttime at 19]."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """Kernel start time of a live (not zombie) process, or None."""
    f = _stat(pid)
    return int(f[19]) if f and f[0] not in ("Z", "X") else None


def is_alive(rec: PidRecord) -> bool:
    return start_ticks(rec.pid) == rec.start_ticks


def process_tree(pid: int) -> dict[int, int]:
    """pid -> start ticks of `pid`, the members of its process group and all their descendants, alive."""
    table: dict[int, tuple[int, int, int]] = {}  # pid -> (ppid, pgrp, start ticks)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            f = _stat(int(entry.name))
            if f and f[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(f[1]), int(f[2]), int(f[19]))
    members = {p: t for p, (_, group, t) in table.items() if p == pid or group == pid}
    frontier = list(members)
    while frontier:
        parent = frontier.pop()
        for p, (pp, _, t) in table.items():
            if pp == parent and p not in members:
                members[p] = t
                frontier.append(p)
    return members


def port_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on host:port (a socket in TIME_WAIT does not count, as for the servers)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, mask: dict[str, str], n: int = TAIL_LINES) -> str:
    from ctpipeline.stack.credentials import mask as hide

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return "(no log)"
    return hide("\n".join("    " + line for line in lines), mask)


def read_pid(paths: StackPaths, name: str) -> PidRecord | None:
    try:
        return PidRecord(**json.loads(paths.pid(name).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # a torn or foreign file: nothing we started
        return None


def _ignored_stop_signals(spec: ProcessSpec) -> list[int]:
    """The stop signals this process ignores: an ignored signal stays ignored across exec, so a service started
    from a script that ignores SIGINT (a background job, `nohup`) would ignore its stop signal too."""
    wanted = {int(spec.stop_signal), int(signal.SIGTERM), int(signal.SIGINT)}
    return [s for s in sorted(wanted) if signal.getsignal(s) == signal.SIG_IGN]


def _default_dispositions(signals: list[int]) -> Callable[[], None] | None:
    """A pre-exec hook that gives `signals` their default disposition in the child (None when there are none)."""
    if not signals:
        return None

    def reset() -> None:
        for s in signals:
            signal.signal(s, signal.SIG_DFL)

    return reset


def start(spec: ProcessSpec, paths: StackPaths) -> tuple[subprocess.Popen, PidRecord]:
    """Start `spec` in a new session, output appended to its log; the pid file is written at once."""
    log_path = paths.log(spec.name)
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.pid(spec.name).parent.mkdir(parents=True, exist_ok=True)
    user = {} if spec.user is None else {"user": spec.user[0], "group": spec.user[1], "extra_groups": []}
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log.write(f"\n=== {stamp} ctp stack: starting {spec.name}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=spec.umask,
                preexec_fn=_default_dispositions(_ignored_stop_signals(spec)),
                **user,
            )
        except OSError as exc:
            raise StartError(f"could not start {spec.name} ({spec.argv[0]}): {exc}") from exc
    ticks = start_ticks(proc.pid) or 0
    rec = PidRecord(spec.name, proc.pid, ticks, spec.port, time.time(), int(spec.stop_signal), spec.group_signal)
    paths.pid(spec.name).write_text(json.dumps(asdict(rec)) + "\n", encoding="utf-8")
    return proc, rec


@dataclass
class Pending:
    """A started process waiting to become healthy."""

    spec: ProcessSpec
    proc: subprocess.Popen
    check: Callable[[], bool]  # may raise CtpError for a failure that waiting cannot cure
    timeout: float


def wait_all(pending: list[Pending], paths: StackPaths) -> dict[str, float]:
    """Seconds each process took to become healthy. StartError naming the log of the first one that exits or
    is not healthy within its timeout."""
    t0 = time.monotonic()
    ready: dict[str, float] = {}
    left = list(pending)
    while left:
        for item in list(left):
            name, log = item.spec.name, paths.log(item.spec.name)
            if item.proc.poll() is not None:
                raise StartError(
                    f"{name} exited with code {item.proc.returncode} while starting; see {log}:\n"
                    f"{log_tail(log, item.spec.mask)}"
                )
            if item.check():
                ready[name] = time.monotonic() - t0
                left.remove(item)
            elif time.monotonic() - t0 > item.timeout:
                raise StartError(
                    f"{name} not healthy after {item.timeout:.0f}s; see {log}:\n{log_tail(log, item.spec.mask)}"
                )
        if left:
            time.sleep(0.5)
    return ready


def _alive_of(tree: dict[int, int]) -> dict[int, int]:
    return {p: t for p, t in tree.items() if start_ticks(p) == t}


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(tree: dict[int, int], timeout: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    left = _alive_of(tree)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _alive_of(left)
    return left


def stop(paths: StackPaths, name: str, timeout: float = 30.0) -> str:
    """Stop the process `name` and everything it started; what happened, in words. The pid file goes."""
    rec = read_pid(paths, name)
    if rec is None:
        return "not running"
    if not is_alive(rec):
        paths.pid(name).unlink(missing_ok=True)
        return "not running (stale pid file removed)"
    tree = process_tree(rec.pid)
    t0 = time.monotonic()
    _signal(rec.pid, rec.stop_signal, rec.group_signal)
    left = _wait_gone(tree, timeout)
    how = f"stopped in {time.monotonic() - t0:.1f}s"
    if left:
        for p in left:
            _signal(p, signal.SIGKILL, group=False)
        _signal(rec.pid, signal.SIGKILL, group=True)
        left = _wait_gone(left, 10.0)
        how = f"killed after {timeout:.0f}s"
    if left:
        raise CtpError(f"{name}: processes {sorted(left)} still alive after SIGKILL")
    paths.pid(name).unlink(missing_ok=True)
    return how
