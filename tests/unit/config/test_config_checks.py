"""Config checks that need more than the YAML's own shape: its columns against the suite, the model's parameter
values, comparisons that cannot work, secrets written inline, and the batch-size limits."""

import json
from pathlib import Path

import pytest
import yaml

from ctpipeline.cli.main import main
from ctpipeline.config.schema import load_config
from ctpipeline.core.models import check_model_params
from ctpipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
FLIGHTS = ROOT / "configs" / "flights.yaml"
SUITE = ROOT / "expectations" / "flights.json"


def base() -> dict:
    d = yaml.safe_load(FLIGHTS.read_text())
    d["quality"]["suite"] = str(SUITE)
    return d


def write(tmp_path: Path, d: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def load_problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as ei:
        cfg = load_config(path)
        check_model_params(cfg, str(path))
    assert str(path) in str(ei.value)
    return dict(ei.value.problems)


def regression(d: dict, model_type: str) -> dict:
    d["target"] = {"column": "arr_delay", "task": "regression"}
    d["evaluation"] = {"metric": "mae"}
    d["model"] = {"type": model_type, "params": {}}
    d["promotion"]["floor"] = None
    return d


# ---------------------------------------------------------------------------------- columns against the suite


@pytest.mark.parametrize(
    "mutate, key, hint",
    [
        (lambda d: d["features"]["numeric"].__setitem__(2, "distnace"), "features.numeric", "did you mean 'distance'"),
        (lambda d: d["features"]["categorical"].__setitem__(0, "carier"), "features.categorical", "'carrier'"),
        (lambda d: d["target"].update(column="arr_dealy"), "target.column", "did you mean 'arr_delay'"),
        (lambda d: d["data"].update(time_column="time_huor"), "data.time_column", "did you mean 'time_hour'"),
        (lambda d: d["promotion"]["slices"][0].update(column="orgin"), "promotion.slices.0.column", "'origin'"),
    ],
    ids=["feature", "categorical", "target", "time", "slice"],
)
def test_a_column_the_suite_does_not_know_is_a_config_error(tmp_path, mutate, key, hint):
    d = base()
    mutate(d)
    probs = load_problems(write(tmp_path, d))
    assert key in probs, probs
    assert hint in probs[key] and "flights.json" in probs[key]


def test_feature_typo_fails_config_validate_with_exit_2_naming_key_and_file(tmp_path, capsys):
    d = base()
    d["features"]["numeric"][2] = "distnace"
    path = write(tmp_path, d)
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "features.numeric" in err and "'distnace'" in err and "Traceback" not in err


def test_a_slice_on_a_suite_column_that_is_not_a_feature_is_fine(tmp_path):
    d = base()
    d["promotion"]["slices"] = [{"column": "month", "min_count": 10}]  # not a feature, but the suite knows it
    suite = json.loads(SUITE.read_text())
    suite["expectations"].append({"type": "expect_column_to_exist", "kwargs": {"column": "month"}})
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    d["quality"]["suite"] = "suite.json"
    assert load_config(write(tmp_path, d)).promotion.slices[0].column == "month"


def test_table_columns_expectation_is_the_full_list(tmp_path):
    d = base()
    d["features"] = {"numeric": ["x", "z"], "categorical": []}
    d["target"] = {"column": "y", "task": "classification"}
    d["data"]["time_column"] = "t"
    d["promotion"]["slices"] = []
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["t", "x", "y", "zz"]}},
        ],
    }
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    d["quality"]["suite"] = "suite.json"
    probs = load_problems(write(tmp_path, d))
    assert "'z'" in probs["features.numeric"] and "'zz'" in probs["features.numeric"]


def test_a_suite_that_names_no_column_leaves_columns_to_the_run(tmp_path):
    d = base()
    d["features"]["numeric"][2] = "distnace"
    d["promotion"]["slices"] = []
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "lax", "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {}}]})
    )
    d["quality"]["suite"] = "suite.json"
    assert "distnace" in load_config(write(tmp_path, d)).features.numeric  # checked against landed batches instead


def test_slice_column_must_be_a_feature_or_known_to_the_suite(tmp_path):
    d = base()
    d["promotion"]["slices"] = [{"column": "tailnum_typo"}]
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "lax", "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {}}]})
    )
    d["quality"]["suite"] = "suite.json"
    probs = load_problems(write(tmp_path, d))
    assert "promotion.slices.0.column" in probs and "neither a feature" in probs["promotion.slices.0.column"]


# ---------------------------------------------------------------------------------- model parameter values


@pytest.mark.parametrize(
    "model_type, params, key, reason",
    [
        ("xgboost", {"max_depth": "deep"}, "model.params.max_depth", "int"),
        ("xgboost", {"learning_rate": -1}, "model.params.learning_rate", "greater"),
        ("xgboost", {"eta": -1}, "model.params.eta", "greater"),
        ("xgboost", {"subsample": 2.0}, "model.params.subsample", "bound"),
        ("xgboost", {"n_estimators": 0}, "model.params.n_estimators", "at least 1"),
        ("xgboost", {"n_estimators": "many"}, "model.params.n_estimators", "integer"),
        ("hist_gradient_boosting", {"max_depth": "deep"}, "model.params.max_depth", "must be an int"),
        ("hist_gradient_boosting", {"learning_rate": -1}, "model.params.learning_rate", "range"),
        ("logistic_regression", {"C": -1}, "model.params.C", "range"),
        ("logistic_regression", {"penalty": "l7"}, "model.params.penalty", "among"),
    ],
)
def test_bad_parameter_values_are_refused_at_load(tmp_path, model_type, params, key, reason):
    d = base()
    d["model"] = {"type": model_type, "params": params}
    probs = load_problems(write(tmp_path, d))
    assert key in probs, probs
    assert reason in probs[key]


@pytest.mark.parametrize(
    "model_type, params, key",
    [("ridge", {"alpha": -1}, "model.params.alpha"), ("xgboost", {"max_depth": -2}, "model.params.max_depth")],
)
def test_bad_parameter_values_of_regressors(tmp_path, model_type, params, key):
    d = regression(base(), model_type)
    d["model"]["params"] = params
    assert key in load_problems(write(tmp_path, d))


def test_bad_parameter_value_fails_config_validate_and_run_before_anything_starts(tmp_path, capsys):
    d = base()
    d["model"]["params"] = {"max_depth": "deep"}
    path = write(tmp_path, d)
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.params.max_depth" in err and str(path) in err
    state = tmp_path / "state"
    assert main(["run", "--config", str(path), "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert "model.params.max_depth" in err and "Traceback" not in err
    assert not state.exists()  # refused before any state was created


def test_good_parameters_still_load(tmp_path):
    d = base()
    d["model"] = {"type": "xgboost", "params": {"max_depth": 4, "eta": 0.1, "n_estimators": 20, "reg_lambda": 1.0}}
    check_model_params(load_config(write(tmp_path, d)), "p.yaml")


@pytest.mark.parametrize("value", ["abc", "15"])
def test_an_ordering_comparison_needs_a_number(tmp_path, value):
    d = base()
    d["target"]["positive_when"] = {">": value}
    probs = load_problems(write(tmp_path, d))
    assert "target.positive_when" in probs and "number" in probs["target.positive_when"]


def test_equality_with_text_is_allowed(tmp_path):
    d = base()
    d["target"]["positive_when"] = {"==": "late"}
    assert load_config(write(tmp_path, d)).target.positive_when == {"==": "late"}


# ---------------------------------------------------------------------------------- the YAML itself


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    text = FLIGHTS.read_text().replace("  min_train_rows: 1000\n", "  min_train_rows: 1000\n  min_train_rows: 10\n")
    path.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "'min_train_rows' appears twice" in str(ei.value) and str(path) in str(ei.value)


@pytest.mark.parametrize(
    "uri",
    [
        "http://alice:s3cr3t-pw@127.0.0.1:5000",
        "postgresql://mlflow:s3cr3t-pw@127.0.0.1/mlflow",
        "https://127.0.0.1:5000/?token=s3cr3t-pw",
    ],
)
def test_a_secret_in_the_tracking_uri_is_refused_and_not_echoed(tmp_path, uri):
    d = base()
    d["mlflow"] = {"tracking_uri": uri}
    probs = load_problems(write(tmp_path, d))
    assert "MLFLOW_TRACKING_USERNAME" in probs["mlflow.tracking_uri"]
    assert "s3cr3t-pw" not in json.dumps(probs)


def test_batch_size_limits_are_validated(tmp_path):
    d = base()
    d["data"].update(max_batch_rows=50_000, min_batch_rows=200)
    cfg = load_config(write(tmp_path, d))
    assert (cfg.data.max_batch_rows, cfg.data.min_batch_rows) == (50_000, 200)
    d["data"].update(max_batch_rows=100, min_batch_rows=200)
    assert "data" in load_problems(write(tmp_path, d))


def test_the_parameter_check_is_remembered_per_model_section_and_still_names_each_file(tmp_path, monkeypatch):
    import ctpipeline.core.models as models

    built = []
    real = models._estimator
    monkeypatch.setattr(models, "_estimator", lambda *a: built.append(a) or real(*a))
    monkeypatch.setattr(models, "_checked", {})
    d = base()
    d["model"] = {"type": "xgboost", "params": {"max_depth": -3}}
    bad = load_config(write(tmp_path, d))
    for name in ("a.yaml", "b.yaml"):  # the same section: checked once, refused each time, under each file's name
        with pytest.raises(ConfigError) as ei:
            check_model_params(bad, name)
        assert name in str(ei.value) and "model.params.max_depth" in dict(ei.value.problems)
    once = len(built)
    d["model"]["params"] = {"max_depth": 3}  # another section: checked on its own
    check_model_params(load_config(write(tmp_path, d)), "c.yaml")
    check_model_params(load_config(write(tmp_path, d)), "c.yaml")
    assert once > 0 and len(built) == 2 * once
