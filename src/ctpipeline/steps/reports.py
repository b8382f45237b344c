"""Reports that change no decision (Evidently's HTML drift report, the plots), drawn off the critical path.

A cycle's stages hand them to `Reports.draw` as they become possible: the drift report once the challenger is
fitted (`draw_later` at monitoring, `release` after the fit: a parallel fit slows down as soon as one of its
threads loses its core), the plots after the decision. A renderer is a module-level function that returns the
report's files (``{artifact path: text or bytes}``); it runs in a **worker process** while the cycle goes on, and
the cycle's run logs the files (`Reports.wait`, called before the run closes; or `Reports.hand_off`, after it
closes, in a command of many cycles: `log_after_close`), so the run ends up with the same artifacts as when they
were drawn inline. A report that fails (in the renderer, in the worker, or when logged) is a warning and
a ``ctp.reports_failed`` tag: it never changes the cycle's outcome.

Why a process: the reports are ~3 s of pure Python a cycle (Evidently's plotly widgets, matplotlib), and so is
most of the cycle around them (the back-test, MLflow's registration). On a thread they take turns on the
interpreter lock, so the cycle waited for them; a worker process draws them on the core the cycle leaves idle.
One worker per process, started early and reused by every later cycle of the process; it imports Evidently and
matplotlib once. It runs at a low CPU priority (nice 10): a parallel XGBoost fit with
one of its cores taken by a busy Python thread at the same priority slows down ~3.8x (each tree waits at a
barrier for the thread that lost its core: 9.2 s against 2.4 s alone, 80k rows, 2 cores); at nice 10 it takes
3.05 s, about what nice 19 gives (2.99 s), while the reports still get ~10% of a core on a machine that is busy
with something else (nice 19: ~1.5%), so a cycle waiting for them is not starved.

A worker process costs a start and Evidently's import (~5 s of CPU, at low priority) once per process: worth it for a
command that runs many cycles in one process (`ctp demo`, and `ctp replay` for more than
one batch: they call `use_worker_process`, which starts the worker early, while the data lands), not for one
cycle (`ctp run`, a flow run of `ctp serve`, which Prefect runs in a process of its own), whose reports are drawn
on a background thread of its process, also at nice 10.

``CTP_REPORTS`` overrides where reports are drawn: ``process``, ``thread`` or ``inline`` (where they are submitted:
the old order, for comparisons and debugging; ``CTP_REPORTS_INLINE=1`` means the same).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ctpipeline.exits import skip_teardown

log = logging.getLogger(__name__)

MODE_ENV = "CTP_REPORTS"
INLINE_ENV = "CTP_REPORTS_INLINE"
MODES = ("process", "thread", "inline")
LOW_PRIORITY = 10  # the reports' nice value (see the module's docstring)

Files = Mapping[str, str | bytes]  # artifact path on the run -> its content
Renderer = Callable[..., Files]


def lower_priority(nice: int = LOW_PRIORITY) -> bool:
    """Lower the calling thread's CPU priority to `nice` (Linux: `setpriority` on the thread's own id; a process's
    first thread is the process). Returns whether it could (elsewhere, or where it is not allowed, the thread keeps
    its priority)."""
    try:
        me = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, me) < nice:  # never raised: a thread already lower stays where it is
            os.setpriority(os.PRIO_PROCESS, me, nice)
    except (AttributeError, OSError):  # no setpriority, or no native thread ids (not Linux)
        return False
    return True


_default = {"mode": "thread", "after_close": False}


def use_worker_process(start: bool = True) -> Future | None:
    """This process runs many cycles: draw their reports in a worker process (unless ``CTP_REPORTS`` says
    otherwise), started now when `start` (it imports Evidently while the caller goes on; the returned future is
    done once it has), and log them after each run closes (`log_after_close`; the command calls `flush` before it
    ends)."""
    _default["mode"] = "process"
    log_after_close(True)
    if start and report_mode() == "process":
        return _submit(_worker("process"), _warm_up)
    return None


def _warm_up() -> None:
    """In the worker: import what the renderers draw with, ahead of the first report."""
    from ctpipeline import plots
    from ctpipeline.adapters.evidently import import_evidently

    import_evidently()
    plots.warm_up()


def log_after_close(enabled: bool = True) -> None:
    """Whether a cycle's run closes before its reports are drawn (`Reports.hand_off`): its decision and
    promotion are done by then, and the next cycle starts while the reports are drawn and logged onto the closed
    run (tagged ``ctp.reports_pending`` until they are). For a process that runs many cycles; it must call `flush`
    before it exits. Off by default: one cycle's process waits for its reports before the run closes."""
    _default["after_close"] = enabled


def logs_after_close() -> bool:
    return _default["after_close"]


_handed: list[threading.Thread] = []  # reports being logged onto closed runs


def flush(timeout: float | None = None) -> bool:
    """Wait (at most `timeout` s each) until the reports handed off by closed runs are logged; whether none is left."""
    with _lock:
        threads = list(_handed)
    for thread in threads:
        thread.join(timeout)
    with _lock:
        _handed[:] = [t for t in _handed if t.is_alive()]
        return not _handed


def report_mode() -> str:
    """Where reports are drawn: ``CTP_REPORTS`` (or ``CTP_REPORTS_INLINE``), else the process's default (a thread;
    a worker process after `use_worker_process`)."""
    if os.environ.get(INLINE_ENV, "") in ("1", "true"):
        return "inline"
    mode = os.environ.get(MODE_ENV, "").strip().lower() or _default["mode"]
    if mode not in MODES:
        log.warning("%s=%r is not one of %s: drawing the reports as %s", MODE_ENV, mode, MODES, _default["mode"])
        return _default["mode"]
    return mode


def _worker_start() -> None:
    """In the report worker: low priority, no Ctrl-C (the terminal's SIGINT reaches the whole process group: the
    command handles it and the worker ends with it, at the end of its pipe), the non-interactive matplotlib backend,
    no library warnings."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority()
    skip_teardown(exit_code=0)  # its parent waits for it to end, not for the ~3 s of teardown after its last report
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.simplefilter("ignore")


_lock = threading.Lock()
_workers: dict[str, ProcessPoolExecutor | ThreadPoolExecutor] = {}


def _worker(mode: str) -> ProcessPoolExecutor | ThreadPoolExecutor:
    """This process's report worker for `mode` (one, reused by every cycle)."""
    with _lock:
        worker = _workers.get(mode)
        if worker is None:
            if mode == "process":  # spawn: a fork of a process running Prefect's and MLflow's threads is unsafe
                worker = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
                )
            else:
                worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctp-reports", initializer=lower_priority)
            _workers[mode] = worker
        return worker


@contextlib.contextmanager
def _no_other_ctpipeline_on_path() -> Iterator[None]:
    """For the block, leave out of ``sys.path`` the folders that hold a ``ctpipeline`` other than this process's.
    A spawned worker starts from a copy of ``sys.path`` and imports ``ctpipeline.steps`` to unpickle its first call:
    a folder earlier on the path with a partial ``ctpipeline`` (a model's ``code_paths``, which MLflow's loader puts
    first on ``sys.path`` and leaves there when it is called directly) would make the worker die at its start."""
    import ctpipeline

    ours = Path(ctpipeline.__file__).resolve().parent
    before = list(sys.path)
    keep = []
    for entry in before:
        other = Path(entry or os.getcwd()) / "ctpipeline"
        try:
            shadows = other.is_dir() and other.resolve() != ours
        except OSError:
            shadows = False
        if not shadows:
            keep.append(entry)
    if keep == before:
        yield
        return
    sys.path[:] = keep
    try:
        yield
    finally:
        sys.path[:] = before


def _submit(worker: ProcessPoolExecutor | ThreadPoolExecutor, fn: Callable, *args) -> Future:
    """`worker.submit`: a process pool starts its process on its first call, from this process's ``sys.path``."""
    with _no_other_ctpipeline_on_path() if isinstance(worker, ProcessPoolExecutor) else contextlib.nullcontext():
        return worker.submit(fn, *args)


def _forget(worker) -> None:
    """Drop a broken worker (a killed or crashed process): the next report starts a new one."""
    with _lock:
        for mode, known in list(_workers.items()):
            if known is worker:
                del _workers[mode]
    worker.shutdown(wait=False, cancel_futures=True)


def _log_when_drawn(jobs: list[tuple[str, Future, object]], log_files: Callable[[Files], None]) -> list[str]:
    """Wait for each drawn report of `jobs` and log its files with `log_files`; return the names of those that
    failed (each logged as a warning). A worker found broken is dropped: the next report starts a new one."""
    failed = []
    for name, future, worker in jobs:
        try:
            log_files(future.result())
        except Exception as exc:
            if isinstance(exc, BrokenProcessPool) and worker is not None:
                _forget(worker)
            log.warning("report %s was not logged: %s: %s", name, type(exc).__name__, exc)
            failed.append(name)
    return failed


class Reports:
    """The reports of one cycle: `draw` as they become possible, `wait` (which logs their files) before the run
    closes."""

    def __init__(self, mode: str | None = None):
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode or report_mode()
        self._jobs: list[tuple[str, Future, object]] = []
        self._later: list[tuple[str, Renderer, tuple]] = []

    def draw_later(self, name: str, render: Renderer, *args) -> None:
        """`draw`, once `release` is called (or the next `draw`, `wait` or `hand_off`): a report that would take a
        core from work that uses them all (a parallel XGBoost fit slows down as soon as one of its threads loses
        its core, even to a low-priority process)."""
        self._later.append((name, render, args))

    def release(self) -> None:
        """Draw the reports held by `draw_later`, in their order."""
        later, self._later = self._later, []
        for name, render, args in later:
            self._draw(name, render, args)

    def draw(self, name: str, render: Renderer, *args) -> None:
        """Draw report `name` as `render(*args)` (a module-level function and picklable arguments: it may run in
        the worker process), returning the files to log on the run."""
        self.release()
        self._draw(name, render, args)

    def _draw(self, name: str, render: Renderer, args: tuple) -> None:
        worker = None
        if self.mode == "inline":
            future: Future = Future()
            try:
                future.set_result(render(*args))
            except Exception as exc:  # reported by wait(), as a background failure is
                future.set_exception(exc)
        else:
            worker = _worker(self.mode)
            try:
                future = _submit(worker, render, *args)
            except (BrokenProcessPool, RuntimeError):  # a worker that died since the last cycle: start a new one
                _forget(worker)
                worker = _worker(self.mode)
                future = _submit(worker, render, *args)
        self._jobs.append((name, future, worker))

    def wait(self, log_files: Callable[[Files], None]) -> list[str]:
        """Wait for every report and log its files with `log_files`; return the names of those that failed (each
        logged as a warning)."""
        self.release()
        jobs, self._jobs = self._jobs, []
        return _log_when_drawn(jobs, log_files)

    @property
    def pending(self) -> bool:
        """Whether any report was drawn (or held) and not yet waited for."""
        return bool(self._jobs or self._later)

    def hand_off(self, log_files: Callable[[Files], None], done: Callable[[list[str]], None]) -> None:
        """`wait` on a background thread of this process (it only waits for the worker and logs): the caller goes
        on at once. `done(failed)` is called there after the last report; `flush` waits for both."""
        self.release()
        if not self._jobs:
            return
        jobs, self._jobs = self._jobs, []

        def finish() -> None:
            try:
                done(_log_when_drawn(jobs, log_files))
            except Exception as exc:  # a store that is down: the run keeps its ctp.reports_pending tag
                log.warning("reports were not logged: %s: %s", type(exc).__name__, exc)

        thread = threading.Thread(target=finish, name="ctp-reports-log", daemon=True)
        with _lock:
            _handed.append(thread)
        thread.start()
