"""The driver's SparkSession: one per (master, settings) in a process, started on first use.

Spark needs Java: a missing `java` (neither ``$JAVA_HOME/bin/java`` nor on PATH) or a missing pyspark is a config
error naming `engine` (CLI exit 2), never a Py4J stack trace.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from ctpipeline.config.engine import SPARK_DEFAULT_CONF, SparkConfig
from ctpipeline.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["find_java", "spark_session", "stop_sessions"]

_LOCK = threading.Lock()
_sessions: dict[tuple, Any] = {}


def find_java() -> str | None:
    """The java binary Spark will start: ``$JAVA_HOME/bin/java``, else the one on PATH, else None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _settings(cfg: SparkConfig) -> dict[str, str]:
    conf = {**SPARK_DEFAULT_CONF}
    if cfg.master.startswith("local"):  # embedded: the driver on loopback only, no network
        conf.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    conf.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in cfg.conf.items()})
    return conf


def spark_session(cfg: SparkConfig, file: str = "<config>"):
    """The SparkSession for `cfg` (created once per process); ConfigError naming `engine` without Java or pyspark."""
    key = (cfg.master, cfg.app_name, tuple(sorted(_settings(cfg).items())))
    with _LOCK:
        if key in _sessions:
            return _sessions[key]
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(
                file, [("engine", "'spark' needs pyspark: pip install 'ctpipeline[spark]' (or set engine: pandas)")]
            ) from None
        if find_java() is None:
            raise ConfigError(
                file,
                [
                    (
                        "engine",
                        "'spark' needs Java 17: no java on PATH and no $JAVA_HOME/bin/java (or set engine: pandas)",
                    )
                ],
            )
        os.environ.setdefault("PYSPARK_PYTHON", _python())  # executors run the driver's interpreter (local mode)
        if cfg.master.startswith("local"):  # the JVM's own address lookup too: loopback only, no network
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
        for k, v in _settings(cfg).items():
            builder = builder.config(k, v)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        log.info("spark session on %s (Spark %s)", cfg.master, session.version)
        _sessions[key] = session
        return session


def _python() -> str:
    import sys

    return sys.executable


def stop_sessions() -> None:
    """Stop every session this process started (tests, the benchmark's child)."""
    with _LOCK:
        for session in _sessions.values():
            session.stop()
        _sessions.clear()
