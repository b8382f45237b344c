"""MLflow's empty SQLite database as a template (`ctpipeline.store.templates`): built once with MLflow's own
migrations, copied where an embedded store's database does not exist yet.

The template holds MLflow's tables at the installed version's head revision and nothing else: the ``Default``
experiment (whose artifact location depends on the store it is opened with) is created by MLflow when the copy is
first opened, as for a database it created itself.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ctpipeline.store import templates

TOOL = "mlflow"


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of an SQLite tracking URI (``sqlite:////abs/mlflow.db``), else None."""
    return templates.sqlite_path(tracking_uri, "sqlite:///")


def seed(tracking_uri: str) -> bool:
    """Copy the template to the database of `tracking_uri` if that is an SQLite file that does not exist yet."""
    db = sqlite_file(tracking_uri)
    return db is not None and templates.seed(db, TOOL)


def build() -> Path:
    """Build the template for the installed MLflow (its migrations, from empty to head) and return its path."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables  # what MLflow's stores run on an empty database

    quiet = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables..."
    level = quiet.level
    with tempfile.TemporaryDirectory(prefix="ctp-mlflow-template-") as tmp:
        db = Path(tmp) / "mlflow.db"
        engine = sqlalchemy.create_engine(f"sqlite:///{db}")
        quiet.setLevel(logging.WARNING)
        try:
            _initialize_tables(engine)
        finally:
            quiet.setLevel(level)
            engine.dispose()
        return templates.save(db, TOOL)
