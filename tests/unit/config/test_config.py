"""Config loading: valid files load, every kind of mistake names the file, the key and the reason."""

from pathlib import Path

import pytest
import yaml

from ctpipeline.cli.main import main
from ctpipeline.config.schema import json_schema, load_config, parse_config
from ctpipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
FLIGHTS = ROOT / "configs" / "flights.yaml"


def base() -> dict:
    return yaml.safe_load(FLIGHTS.read_text())


def write(tmp_path, data, name="p.yaml") -> Path:
    (tmp_path / "suite.json").write_text('{"name": "s", "expectations": []}')
    data = {**data, "quality": {"suite": "suite.json"}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems(exc: ConfigError) -> dict[str, str]:
    return dict(exc.problems)


def test_shipped_config_loads_and_resolves_suite_relative_to_file():
    cfg = load_config(FLIGHTS)
    assert cfg.name == "flights-delay"
    assert cfg.suite_path == (ROOT / "expectations" / "flights.json").resolve()
    assert cfg.target.task == "classification" and cfg.evaluation.higher_is_better
    assert "dep_delay" in cfg.features.exclude


def test_config_hash_is_stable_and_changes_with_content(tmp_path):
    a = load_config(write(tmp_path, base(), "a.yaml"))
    b = load_config(write(tmp_path, base(), "b.yaml"))
    assert a.config_hash() == b.config_hash()
    d = base()
    d["promotion"]["min_margin"] = 0.01
    assert load_config(write(tmp_path, d, "c.yaml")).config_hash() != a.config_hash()


def test_misspelled_key_names_file_key_and_suggestion(tmp_path):
    d = base()
    d["promotion"]["min_margn"] = d["promotion"].pop("min_margin")
    path = write(tmp_path, d)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(path) in str(ei.value)
    assert "unknown key; did you mean 'min_margin'?" == problems(ei.value)["promotion.min_margn"]


@pytest.mark.parametrize(
    "mutate, key, reason",
    [
        (lambda d: d["training"].update(window_batches="three"), "training.window_batches", "valid integer"),
        (lambda d: d["training"].update(window_batches=0), "training.window_batches", "greater than or equal to 1"),
        (lambda d: d["model"].update(type="xgbost"), "model.type", "'xgboost'"),
        (lambda d: d["evaluation"].update(metric="rmse"), "(top level)", "does not fit task 'classification'"),
        (lambda d: d["features"].update(numeric=["arr_delay"], exclude=[]), "(top level)", "target column 'arr_delay'"),
        (lambda d: d["features"]["numeric"].append("dep_delay"), "features", "excluded columns listed as features"),
        (lambda d: d["data"].update(timezone="Mars/Olympus"), "data.timezone", "unknown time zone"),
        (lambda d: d.update(name="bad name!"), "name", "should match pattern"),
        (lambda d: d["model"].update(device="cuda", type="logistic_regression"), "model", "only supported"),
        (lambda d: d.pop("target"), "target", "Field required"),
    ],
)
def test_invalid_values_name_key_and_reason(tmp_path, mutate, key, reason):
    d = base()
    mutate(d)
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, d))
    probs = problems(ei.value)
    assert key in probs, probs
    assert reason in probs[key]


def test_broken_yaml_reports_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ndata: [unclosed\n")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(path) in str(ei.value) and "line" in str(ei.value)


def test_missing_file_and_missing_suite(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    d = base()
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**d, "quality": {"suite": "missing.json"}}))
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "quality.suite" in problems(ei.value)


def test_top_level_must_be_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        parse_config(["a", "b"], "x.yaml")


def test_unknown_model_param_is_named(tmp_path):
    from ctpipeline.core.models import check_model_params

    d = base()
    d["model"] = {"type": "hist_gradient_boosting", "params": {"max_iters": 10}}
    path = write(tmp_path, d)
    with pytest.raises(ConfigError) as ei:
        check_model_params(load_config(path), str(path))
    assert "did you mean 'max_iter'" in problems(ei.value)["model.params.max_iters"]


def test_schema_lists_sections_and_hides_internal_fields():
    schema = json_schema()
    props = schema["properties"]
    assert {"name", "data", "target", "features", "model", "promotion", "quality"} <= set(props)
    assert "config_dir" not in props


def test_cli_validate_exit_codes(tmp_path, capsys):
    assert main(["config", "validate", str(FLIGHTS)]) == 0
    assert "OK" in capsys.readouterr().out
    d = base()
    d["features"]["numerc"] = d["features"].pop("numeric")
    path = write(tmp_path, d)
    assert main(["config", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "features.numerc" in err and "did you mean 'numeric'" in err


def test_cli_schema_prints_json(capsys):
    import json

    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ctpipeline pipeline config"


def test_cli_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--help"])
    assert ei.value.code == 0
    assert "replay" in capsys.readouterr().out


def test_backtest_baselines_default_to_replays_and_leave_the_config_hash_alone(tmp_path):
    d = base()
    d["backtest"].pop("baselines", None)
    plain = load_config(write(tmp_path, d, "plain.yaml"))
    assert plain.backtest.baselines == "replay"
    for when in ("always", "never"):
        d["backtest"]["baselines"] = when
        cfg = load_config(write(tmp_path, d, f"{when}.yaml"))
        assert cfg.backtest.baselines == when
        assert cfg.config_hash() == plain.config_hash()  # recorded only: the pipeline decides the same
    d["backtest"]["baselines"] = "sometimes"
    path = write(tmp_path, d, "bad.yaml")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "backtest.baselines" in problems(ei.value) and str(path) in str(ei.value)
