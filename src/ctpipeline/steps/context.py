"""The pipeline a step works on: its validated config, its state folder and its MLflow stores."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ctpipeline.config.schema import PipelineConfig, load_config
from ctpipeline.errors import ConfigError
from ctpipeline.store.ledger import Ledger
from ctpipeline.store.state import BatchLog, StatePaths, resolve_state_dir


@dataclass(frozen=True)
class Pipeline:
    cfg: PipelineConfig
    paths: StatePaths
    config_file: Path

    @classmethod
    def open(
        cls, config_path: str | Path, state_dir: str | Path | None = None, *, must_exist: bool = False
    ) -> Pipeline:
        """Load and check the config. `must_exist`: read-only commands refuse a state folder that is not there
        (a typo would otherwise create an empty MLflow store and report nothing)."""
        from ctpipeline.core.models import check_model_params

        cfg = load_config(config_path)
        check_model_params(cfg, str(config_path))
        root = resolve_state_dir(state_dir)
        if must_exist and not root.is_dir():
            raise ConfigError(str(root), "state folder not found (check --state-dir or $CTP_HOME); nothing was created")
        return cls(cfg, StatePaths(root), Path(config_path).resolve())

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def landing_dir(self) -> Path:
        if self.cfg.data.landing_dir:
            return self.cfg.resolve(self.cfg.data.landing_dir)
        return self.paths.landing(self.name)

    @property
    def quarantine_dir(self) -> Path:
        return self.paths.quarantine(self.name)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.paths.pipeline_dir(self.name) / "ledger.jsonl")

    @property
    def batch_log(self) -> BatchLog:
        return BatchLog(self.paths.pipeline_dir(self.name) / "batches.jsonl")

    @property
    def embedded(self) -> bool:
        """True when MLflow runs on the SQLite store in the state folder (no tracking server configured)."""
        return not (self.cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))

    @property
    def tracking_uri(self) -> str:
        """`mlflow.tracking_uri` from the YAML, else $MLFLOW_TRACKING_URI, else SQLite in the state folder."""
        from ctpipeline.adapters.mlflow import sqlite_tracking_uri

        if self.embedded:
            return sqlite_tracking_uri(self.paths.mlflow_db)
        return self.cfg.mlflow.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]

    @cached_property
    def stores(self):
        """MLflow tracking, registry and model I/O for this pipeline (the experiment is created on first use)."""
        from ctpipeline.adapters.mlflow import file_artifact_location, open_stores

        artifact_location = None
        if self.embedded:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            artifact_location = file_artifact_location(self.paths.artifacts / self.cfg.experiment_name)
        stores = open_stores(
            self.tracking_uri, self.name, self.cfg.experiment_name, artifact_location, self.cfg.description
        )
        stores.tracking.ensure_experiment()
        return stores

    @property
    def tracking(self):
        return self.stores.tracking

    @property
    def registry(self):
        return self.stores.registry

    @property
    def models(self):
        return self.stores.models
