"""The environment `make venv` builds imports from .pyc files: PYTHONDONTWRITEBYTECODE (set on our CI machines and in
the Docker image) stops Python from writing them, so an install without byte-compilation makes every `ctp` process
compile pandas, sklearn, xgboost, Prefect and MLflow from source again (~7 s more per process on 2 cores)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

MODULES = ["pandas", "sklearn", "xgboost", "prefect", "mlflow", "great_expectations", "evidently"]


def test_the_makefile_byte_compiles_what_it_installs():
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    installs = [ln for ln in makefile.splitlines() if "uv pip install" in ln or "uv pip sync" in ln]
    assert installs and all("--compile-bytecode" in ln for ln in installs), installs
    assert "compileall" in makefile  # the project's own (editable) sources


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="a venv made by hand may predate byte-compilation")
@pytest.mark.parametrize("name", [*MODULES, "ctpipeline"])
def test_the_installed_packages_have_their_bytecode(name):
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin, name
    cached = Path(importlib.util.cache_from_source(spec.origin))
    assert cached.is_file(), f"{name}: no {cached} (install with --compile-bytecode; the project: compileall)"
