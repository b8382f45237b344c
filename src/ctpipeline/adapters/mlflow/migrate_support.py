"""The parts of a migration (adapters/mlflow/migrate.py) that call no MLflow API: the report (what was copied, what
was there already, in words and as JSON), URI redaction, the reachability check and the MLmodel re-pointing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctpipeline.errors import RegistryError


def redact(uri: str) -> str:
    """The URI without user:password (for messages)."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


@dataclass
class MigrationReport:
    source: str
    target: str
    experiment: str
    model: str
    runs_copied: list[str] = field(default_factory=list)  # source run ids copied now
    runs_present: list[str] = field(default_factory=list)  # copied by an earlier migration
    versions_copied: list[str] = field(default_factory=list)
    versions_present: list[str] = field(default_factory=list)
    aliases_set: dict[str, str] = field(default_factory=dict)
    aliases_present: dict[str, str] = field(default_factory=dict)

    @property
    def copied_anything(self) -> bool:
        return bool(self.runs_copied or self.versions_copied or self.aliases_set)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"copied_anything": self.copied_anything}

    def summary(self) -> str:
        head = f"{self.source} -> {self.target} (experiment {self.experiment!r}, model {self.model!r})"
        if not self.copied_anything:
            return (
                f"{head}: nothing to copy, everything was migrated already ({len(self.runs_present)} runs, "
                f"{len(self.versions_present)} versions, aliases {_aliases(self.aliases_present)})"
            )
        return "\n".join(
            [
                f"{head}:",
                f"  runs:     {len(self.runs_copied)} copied, {len(self.runs_present)} already there",
                f"  versions: {', '.join('v' + v for v in self.versions_copied) or 'none'} copied, "
                f"{len(self.versions_present)} already there",
                f"  aliases:  {_aliases(self.aliases_set) or 'none'} set, {_aliases(self.aliases_present) or 'none'}"
                " already there",
            ]
        )


def _aliases(aliases: dict[str, str]) -> str:
    return ", ".join(f"{a}=v{v}" for a, v in sorted(aliases.items()))


def reachable(uri: str, timeout: float = 10.0) -> None:
    """One GET of an http(s) server's /health: a wrong address fails in seconds, not after the client's retries."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    url = re.sub(r"//[^/@]*@", "//", uri).rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - the user's own server
            return
    except urllib.error.HTTPError:
        return  # it answers (an auth proxy may guard /health): the client's calls will say more
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"cannot reach the MLflow server at {redact(uri)}: {exc}") from None


def repoint_mlmodel(model_dir: Path, run_id: str | None, model_id: str) -> None:
    """The copied MLmodel file names the copy's run and LoggedModel instead of the source's."""
    import yaml

    path = model_dir / "MLmodel"
    if not path.is_file():
        return
    doc = yaml.safe_load(path.read_text()) or {}
    if "model_id" in doc:
        doc["model_id"] = model_id
    if "run_id" in doc and run_id:
        doc["run_id"] = run_id
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
