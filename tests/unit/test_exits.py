"""`ctpipeline.exits`: a finished process ends without the interpreter's teardown, and loses nothing by it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import atexit, logging, sys, threading, time
    from pathlib import Path
    from ctpipeline.exits import set_exit_code, skip_teardown

    out = Path(sys.argv[1])
    on = skip_teardown()
    atexit.register(lambda: (out / "atexit").write_text("ran"))  # registered later: runs before the exit

    def slow_writer():
        time.sleep(0.3)
        (out / "thread").write_text("joined")

    threading.Thread(target=slow_writer).start()  # not a daemon: the interpreter joins it first
    logging.basicConfig(filename=out / "log.txt", level=logging.INFO)
    logging.getLogger("t").info("logged")

    class Teardown:
        def __del__(self):
            (out / "teardown").write_text("ran")

    keep = Teardown()  # a module global: collected only by the interpreter's teardown
    sys.stdout.write("on" if on else "off")  # no newline: still flushed
    mode = sys.argv[2]
    if mode == "raise":
        raise RuntimeError("boom")
    code = {"none": None, "message": "a message", "int": 3}[mode]
    set_exit_code(code)
    sys.exit(code)
    """
)


def _run(tmp_path, mode: str, **env) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    full_env = {k: v for k, v in os.environ.items() if k != "CTP_FULL_TEARDOWN"} | env
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), mode], capture_output=True, text=True, env=full_env, timeout=60
    )


FULL_DISK = textwrap.dedent(
    """
    import io, sys
    from ctpipeline.exits import set_exit_code, skip_teardown

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(28, "No space left on device")

    skip_teardown()
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(Full(), 1 << 16))
    sys.stdout.write("output still in the buffer at exit")
    set_exit_code(int(sys.argv[1]))
    """
)


@pytest.mark.parametrize(("code", "status"), [(0, 120), (3, 3)])
def test_output_that_cannot_be_written_fails_a_successful_exit_as_cpython_does(tmp_path, code, status):
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    done = subprocess.run([sys.executable, str(script), str(code)], capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr


def test_an_interrupt_outside_a_command_ends_with_the_status_of_sigint():
    code = (
        "import sys, ctpipeline.cli.main\n"
        "m = sys.modules['ctpipeline.cli.main']\n"
        "def interrupted(argv=None):\n"
        "    raise KeyboardInterrupt\n"
        "m.main = interrupted\n"
        "m.entrypoint()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr


@pytest.mark.parametrize(("mode", "code"), [("int", 3), ("none", 0), ("message", 1), ("raise", 1)])
def test_the_exit_status_is_what_the_process_would_have_had(tmp_path, mode, code):
    done = _run(tmp_path, mode)
    assert done.returncode == code, done.stderr
    assert done.stdout == "on"
    if mode == "message":
        assert "a message" in done.stderr
    if mode == "raise":
        assert "RuntimeError: boom" in done.stderr


def test_threads_atexit_handlers_logs_and_streams_are_done_and_only_the_teardown_is_skipped(tmp_path):
    done = _run(tmp_path, "int")
    assert done.returncode == 3 and done.stdout == "on"
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert "logged" in (tmp_path / "log.txt").read_text()
    assert not (tmp_path / "teardown").exists()


def test_full_teardown_on_request(tmp_path):
    done = _run(tmp_path, "int", CTP_FULL_TEARDOWN="1")
    assert done.returncode == 3 and done.stdout == "off"
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "teardown").read_text() == "ran"


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["no-such-command"], 2), (["config", "schema"], 0)])
def test_ctp_exit_codes_through_the_entry_point(argv, code):
    done = subprocess.run(
        [sys.executable, "-m", "ctpipeline", *argv], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert done.returncode == code, done.stderr
    if argv == ["config", "schema"]:  # a long stdout, written through a pipe, arrives whole
        import json

        assert json.loads(done.stdout)["title"]
