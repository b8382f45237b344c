"""Registry (adapters/mlflow/registry.py) against a real embedded MLflow store under tmp_path.

Versions are made with a plain MLflow client and no model files (bare_versions): aliases and tags do not
need them. Versions made by ModelStore are covered in test_mlflow_model_io.py."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow")

from mlflow_support import MODEL, bare_versions, client, empty_db, isolated, state, stores  # noqa: E402, F401

from ctpipeline.adapters.mlflow import CHAMPION, ModelRef, Registry  # noqa: E402
from ctpipeline.errors import RegistryError  # noqa: E402


def test_model_ref():
    ref = ModelRef(MODEL, "3", "abc")
    assert ref.uri == f"models:/{MODEL}/3"
    with pytest.raises(AttributeError):
        ref.version = "4"  # frozen


def test_fresh_registry_has_no_champion(stores):
    assert stores.registry.champion() is None
    assert stores.registry.get_alias("challenger") is None
    assert stores.registry.get_version("1") is None


def test_versions_and_alias_roundtrip(stores, client):
    reg = stores.registry
    v1, v2 = bare_versions(client, 2)
    assert reg.get_version("1") == v1 == ModelRef(MODEL, "1", None)
    assert reg.get_version(2) == v2
    assert reg.get_version("3") is None
    assert reg.get_alias("challenger") is None  # the model exists, the alias does not

    reg.set_alias(CHAMPION, v1)
    assert reg.champion() == v1
    reg.set_alias("champion", v2)  # overwritten in one write
    assert reg.champion() == reg.get_alias("champion") == v2
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    with pytest.raises(RegistryError, match="does not belong"):
        reg.set_alias("champion", ModelRef("other", "1", None))
    assert reg.champion() == v2


def test_version_tags(stores, client):
    reg = stores.registry
    [v1] = bare_versions(client, 1)
    reg.set_version_tags(v1, {"ctp.promoted_by": "test", "odd key@x": 3})
    assert reg.get_version_tags(v1) == {"ctp.promoted_by": "test", "odd key_x": "3"}
    assert client.get_model_version(MODEL, "1").tags["ctp.promoted_by"] == "test"
    with pytest.raises(RegistryError, match="does not belong"):
        reg.get_version_tags(ModelRef("other", "1", None))
    with pytest.raises(RegistryError, match="read tags"):
        reg.get_version_tags(ModelRef(MODEL, "7", None))


def test_compare_and_swap_alias(stores, client):
    reg = stores.registry
    v1, v2, v3 = bare_versions(client, 3)

    # fresh alias: expected None sets it
    assert reg.compare_and_swap_alias("champion", v1, expected_version=None) is True
    assert reg.champion() == v1
    # expected None but the alias exists: refused
    assert reg.compare_and_swap_alias("champion", v2, expected_version=None) is False
    assert reg.champion() == v1
    # expected matches: moved
    assert reg.compare_and_swap_alias("champion", v2, expected_version="1") is True
    assert reg.champion() == v2

    # someone else (another process) moves the alias in between
    Registry(reg.tracking_uri, MODEL).set_alias("champion", v3)
    assert reg.compare_and_swap_alias("champion", v1, expected_version="2") is False
    assert reg.champion() == v3  # untouched

    # already at the target and expected there: success without a write
    assert reg.compare_and_swap_alias("champion", v3, expected_version="3") is True

    # a version that does not exist is an error, and the alias stays
    with pytest.raises(RegistryError, match="does not exist"):
        reg.compare_and_swap_alias("champion", ModelRef(MODEL, "99", None), expected_version="3")
    with pytest.raises(RegistryError, match="does not belong"):
        reg.compare_and_swap_alias("champion", ModelRef("other", "1", None), expected_version="3")
    assert reg.champion() == v3


@pytest.mark.parametrize(
    ("corruption", "message"),
    [  # MLflow drops aliases with the version it deletes, so corrupt the store directly
        ("UPDATE registered_model_aliases SET version = 42 WHERE alias = 'champion'", "does not exist any more"),
        (
            "UPDATE model_versions SET status = 'PENDING_REGISTRATION' WHERE version = 1",
            "registration status is PENDING_REGISTRATION",
        ),
    ],
)
def test_alias_pointing_at_a_missing_or_unfinished_version_is_a_registry_error(
    stores, client, state, corruption, message
):
    [ref] = bare_versions(client, 1)
    stores.registry.set_alias("champion", ref)
    with sqlite3.connect(state / "mlflow.db") as db:
        db.execute(corruption)
    with pytest.raises(RegistryError, match=message):
        stores.registry.champion()
