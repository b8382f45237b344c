"""MLflow model registry for one registered model: versions, aliases and version tags.

Stages are deprecated in MLflow 3; the pipeline uses aliases (``champion``, ``challenger``, ``previous``).
Every call goes through an explicit client, never through MLflow's global state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ctpipeline.adapters.mlflow.common import (
    ModelScoped,
    is_missing_alias,
    is_not_found,
    mlflow_errors,
    mlflow_message,
    sanitize_key,
)
from ctpipeline.errors import RegistryError

log = logging.getLogger(__name__)

CHAMPION = "champion"
_READY = ("READY", "ModelVersionStatus.READY")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @classmethod
    def from_version(cls, mv: Any) -> ModelRef:
        """The reference to an MLflow ``ModelVersion``."""
        return cls(name=mv.name, version=str(mv.version), run_id=(mv.run_id or None))


def is_ready(mv: Any) -> bool:
    """True when a ``ModelVersion``'s registration completed (a version without a status counts as ready)."""
    return str(getattr(mv, "status", "READY")) in _READY


def check_ref(ref: ModelRef, model_name: str) -> None:
    """RegistryError unless ``ref`` is a version of ``model_name``."""
    if ref.name != model_name:
        raise RegistryError(f"model version {ref.uri} does not belong to registered model {model_name!r}")


class Registry(ModelScoped):
    """Versions and aliases of the registered model ``model_name`` in the store at ``tracking_uri``."""

    def _errors(self, what: str):
        return mlflow_errors(what, self.tracking_uri)

    # ---- versions -----------------------------------------------------------------------------

    def get_version(self, version: str) -> ModelRef | None:
        """The given version of ``model_name``, or None if it (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"get {self.model_name} v{version}"):
            try:
                mv = self.client.get().get_model_version(self.model_name, str(version))
            except MlflowException as exc:
                if is_not_found(exc):
                    return None
                raise
        return ModelRef.from_version(mv)

    def set_version_tags(self, ref: ModelRef, tags: dict[str, str]) -> None:
        """Set tags on a version (keys sanitised, values stringified)."""
        check_ref(ref, self.model_name)
        with self._errors(f"tag {ref.uri}"):
            for key, value in tags.items():
                self.client.get().set_model_version_tag(ref.name, str(ref.version), sanitize_key(key), str(value))

    def get_version_tags(self, ref: ModelRef) -> dict[str, str]:
        check_ref(ref, self.model_name)
        with self._errors(f"read tags of {ref.uri}"):
            return dict(self.client.get().get_model_version(ref.name, str(ref.version)).tags or {})

    # ---- aliases ------------------------------------------------------------------------------

    def get_alias(self, alias: str) -> ModelRef | None:
        """Version the alias points at; None if the registered model or the alias does not
        exist. RegistryError if the alias points at a missing/deleted or unusable version."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"read alias {self.model_name}@{alias}"):
            client = self.client.get()
            try:
                mv = client.get_model_version_by_alias(self.model_name, alias)
            except MlflowException as exc:
                if is_not_found(exc):
                    try:
                        client.get_registered_model(self.model_name)
                    except MlflowException as exc2:
                        if is_not_found(exc2):
                            return None
                        raise
                    raise RegistryError(
                        f"alias {self.model_name}@{alias} points at a model version that does "
                        f"not exist any more ({mlflow_message(exc)}); set the alias again "
                        f"(`ctp rollback --to-version N`, or the MLflow UI) or delete it"
                    ) from exc
                if is_missing_alias(exc):
                    return None
                raise
        if not is_ready(mv):
            raise RegistryError(
                f"alias {self.model_name}@{alias} points at version {mv.version}, whose "
                f"registration status is {getattr(mv, 'status', 'READY')!s}"
            )
        return ModelRef.from_version(mv)

    def champion(self) -> ModelRef | None:
        """The version the ``champion`` alias points at (None when there is none)."""
        return self.get_alias(CHAMPION)

    def set_alias(self, alias: str, ref: ModelRef) -> None:
        """Point ``alias`` at ``ref`` (overwrites in one write; the alias never disappears)."""
        check_ref(ref, self.model_name)
        with self._errors(f"set alias {ref.name}@{alias} -> v{ref.version}"):
            self.client.get().set_registered_model_alias(ref.name, alias, str(ref.version))

    def compare_and_swap_alias(self, alias: str, new: ModelRef, expected_version: str | None) -> bool:
        """Move ``alias`` to ``new.version`` only if it currently points at ``expected_version``
        (``None``: the alias must not exist yet). Returns True when the alias points at
        ``new.version`` afterwards because of this call (or already did and was expected to),
        False, having changed nothing, when the current value differs from the expected one.

        MLflow has no atomic compare-and-swap, so this is read -> compare -> set -> read back:

        * The alias is *overwritten* in a single write, never deleted first, so a crash at any
          point leaves it pointing at either the old or the new version, never at nothing.
        * Remaining race window: another writer that moves the alias between our read and our
          write is silently overwritten (lost update). A writer landing after our write is
          detected by the read-back, and we return False (its value stands). Callers that need
          strict serialisation must hold an external lock (e.g. a Prefect concurrency limit)
          around promotion.
        """
        check_ref(new, self.model_name)
        if self.get_version(new.version) is None:
            raise RegistryError(f"cannot move {self.model_name}@{alias}: {new.uri} does not exist")
        expected = None if expected_version is None else str(expected_version)
        current = self.get_alias(alias)
        current_version = current.version if current else None
        if current_version != expected:
            log.info(
                "alias %s@%s is at %s, expected %s: not moving it to v%s",
                self.model_name,
                alias,
                current_version,
                expected,
                new.version,
            )
            return False
        if current_version != str(new.version):
            self.set_alias(alias, new)
        after = self.get_alias(alias)
        if after is None or after.version != str(new.version):
            log.warning(
                "alias %s@%s was moved concurrently to %s while setting it to v%s",
                self.model_name,
                alias,
                after.version if after else None,
                new.version,
            )
            return False
        return True
