"""Empty SQLite databases built once per install, copied into each new state folder.

A new state folder's MLflow and Prefect databases start empty, and each tool then builds its schema by running
its whole chain of Alembic migrations: ~1.7 s for MLflow in the command's process, ~2.5 s for Prefect in its
ephemeral server (measured on the project's 2-core machine), both before the first cycle can start. The result
depends only on the tool's version. So `make venv` (``ctp prepare``) builds each database once, with the tool's own
migrations, into a template folder (``<venv>/share/ctpipeline/db-templates/``, or ``$CTP_DB_TEMPLATES``), and a
new state folder gets a copy. A database that exists is never touched; without a template for the installed
version the tool creates its database itself, as before. ``CTP_DB_TEMPLATES=`` (empty) turns templates off.

The tool-specific parts (how to build, when a state folder's database is the embedded one) live in the adapters
(``adapters.mlflow.dbtemplate``, ``adapters.prefect.dbtemplate``); this module only names, checks and copies files.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

TEMPLATES_ENV = "CTP_DB_TEMPLATES"
_SQLITE_HEADER = b"SQLite format 3\x00"


def template_dir() -> Path | None:
    """Where templates live: ``$CTP_DB_TEMPLATES``, else ``<sys.prefix>/share/ctpipeline/db-templates``; None when
    ``CTP_DB_TEMPLATES`` is set empty (templates off)."""
    value = os.environ.get(TEMPLATES_ENV)
    if value is None:
        return Path(sys.prefix) / "share" / "ctpipeline" / "db-templates"
    return Path(value).expanduser() if value.strip() else None


def template_path(tool: str) -> Path | None:
    """The template of `tool`'s database (a distribution name: ``mlflow``, ``prefect``) for its installed version."""
    folder = template_dir()
    return None if folder is None else folder / f"{tool}-{metadata.version(tool)}.db"


def sqlite_path(url: str, prefix: str) -> Path | None:
    """The database file of an SQLite URL that starts with `prefix` (``sqlite:///`` for MLflow,
    ``sqlite+aiosqlite:///`` for Prefect; a query string dropped), as the driver opens it (no ``~`` expanded); None
    for another database or ``:memory:``."""
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def seed(target: Path, tool: str) -> bool:
    """Copy `tool`'s template to `target` if `target` does not exist; whether it did. Never raises: without a
    usable template (none built, unreadable, not SQLite) the tool creates its database itself. A database another
    process created meanwhile wins: the copy is linked into place only where no file is."""
    try:
        if target.exists():  # first: the usual case, on every store opened (the version lookup costs ~2-9 ms)
            return False
        template = template_path(tool)
        if template is None or not is_sqlite(template):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _copy_beside(template, target)
        try:
            os.link(tmp, target)  # fails if the file appeared meanwhile: that one is kept
        finally:
            tmp.unlink()
    except (OSError, ImportError) as exc:  # ImportError: the tool is not installed as a distribution
        log.debug("no %s template copied to %s: %s", tool, target, exc)
        return False
    log.debug("%s database %s copied from %s", tool, target, template)
    return True


def save(built: Path, tool: str) -> Path:
    """Make the database file `built` the template of `tool` (atomically: a reader sees the old one or the new
    one). Raises OSError when the template folder cannot be written, ValueError when templates are off."""
    template = template_path(tool)
    if template is None:
        raise ValueError(f"{TEMPLATES_ENV} is set empty: database templates are off")
    if not is_sqlite(built):
        raise ValueError(f"{built} is not an SQLite database")
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = _copy_beside(built, template)
    try:
        os.replace(tmp, template)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return template


def _copy_beside(source: Path, target: Path) -> Path:
    """A copy of `source` under a new hidden name in `target`'s folder, with the mode SQLite gives a database it
    creates (0o644 less the umask)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
