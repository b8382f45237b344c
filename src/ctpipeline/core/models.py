"""Model factory: every model is a scikit-learn Pipeline (feature transforms, preprocessing, estimator).

The pipeline takes the raw columns (`core.data.input_columns`): its first steps cast them and derive the datetime
parts (`core.features`), so the logged model scores raw landed rows. Tree models get ordinal-encoded categoricals
and keep NaN (they handle missing values natively); linear models get imputation, scaling and one-hot encoding.
Unknown categories at prediction time never raise.
"""

from __future__ import annotations

from typing import Any

from ctpipeline.config.schema import ModelConfig, PipelineConfig
from ctpipeline.errors import ConfigError

# Defaults chosen for tabular data of 10^4..10^6 rows; YAML params override them.
DEFAULTS: dict[str, dict[str, Any]] = {
    "xgboost": {
        "n_estimators": 300,
        "learning_rate": 0.08,
        "max_depth": 6,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "tree_method": "hist",  # no n_jobs: XGBoost uses the cores this process may run on, not a constant
    },
    "hist_gradient_boosting": {"max_iter": 300, "learning_rate": 0.08, "early_stopping": False},
    "logistic_regression": {"C": 1.0, "max_iter": 1000},
    "ridge": {"alpha": 1.0},
}

# Distributions a logged model needs at load time (pip_requirements; see adapters.mlflow.installed_requirements).
REQUIREMENTS: dict[str, list[str]] = {
    "xgboost": ["scikit-learn", "xgboost-cpu", "xgboost", "pandas", "numpy"],
    "hist_gradient_boosting": ["scikit-learn", "pandas", "numpy"],
    "logistic_regression": ["scikit-learn", "pandas", "numpy"],
    "ridge": ["scikit-learn", "pandas", "numpy"],
}


# XGBoost booster parameters that are not attributes of XGBClassifier but are accepted as **kwargs.
XGBOOST_NATIVE_PARAMS = {
    "eta",
    "lambda",
    "alpha",
    "min_split_loss",
    "seed",
    "nthread",
    "max_cached_hist_node",
    "refresh_leaf",
    "process_type",
    "sampling_method",
    "updater",
    "disable_default_eval_metric",
}


def _estimator(model: ModelConfig, task: str, seed: int):
    params = {**DEFAULTS[model.type], **model.params}
    if model.type == "xgboost":
        import xgboost as xgb

        params.setdefault("random_state", seed)
        if model.device == "cuda":
            params["device"] = "cuda"
        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        return cls(**params)
    if model.type == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        params.setdefault("random_state", seed)
        cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
        return cls(**params)
    if model.type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        params.setdefault("random_state", seed)
        return LogisticRegression(**params)
    if model.type == "ridge":
        from sklearn.linear_model import Ridge

        return Ridge(**params)
    raise ValueError(f"unknown model type {model.type!r}")  # unreachable: config validates the type


def feature_names(cfg: PipelineConfig) -> tuple[list[str], list[str]]:
    """(numeric, categorical) input columns of the model, datetime parts included as numeric."""
    parts = [f"{cfg.data.time_column}_{p}" for p in cfg.features.datetime_parts]
    return [*cfg.features.numeric, *parts], list(cfg.features.categorical)


def feature_steps(cfg: PipelineConfig) -> list[tuple[str, Any]]:
    """The pipeline's first steps: raw columns selected and cast, then the datetime parts in the configured zone."""
    from ctpipeline.core.features import ColumnTypes, DatetimeParts

    f, tcol = cfg.features, cfg.data.time_column
    keep = [tcol] if f.datetime_parts else []
    steps: list[tuple[str, Any]] = [("columns", ColumnTypes(list(f.numeric), list(f.categorical), keep))]
    if f.datetime_parts:
        steps.append(("datetime_parts", DatetimeParts(tcol, list(f.datetime_parts), cfg.data.timezone)))
    return steps


def build_model(cfg: PipelineConfig):
    """An unfitted scikit-learn Pipeline for the config's model, task and features, taking the raw columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric, categorical = feature_names(cfg)
    estimator = _estimator(cfg.model, cfg.target.task, cfg.training.seed)
    if cfg.model.type in ("xgboost", "hist_gradient_boosting"):
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype="float64"
        )
        pre = ColumnTransformer(
            [("num", "passthrough", numeric), ("cat", cat, categorical)], verbose_feature_names_out=False
        )
        if cfg.model.type == "hist_gradient_boosting" and categorical:
            n = len(numeric)
            estimator.set_params(categorical_features=list(range(n, n + len(categorical))))
    else:
        num = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
        )
        pre = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)], verbose_feature_names_out=False)
    return Pipeline([*feature_steps(cfg), ("preprocess", pre), ("model", estimator)])


_checked: dict[tuple, tuple[tuple[str, str], ...]] = {}  # model section, task, seed -> its problems


def check_model_params(cfg: PipelineConfig, file: str = "<config>") -> None:
    """Fail at load time, naming the key, when a hyper-parameter does not exist for the estimator or has a value
    it refuses (the estimator's own validation, run without fitting). Checked once per process for each model
    section (an XGBoost booster is built for it, ~20 ms): the flow loads the config again every cycle."""
    key = (repr(cfg.model), cfg.target.task, cfg.training.seed)  # repr: NaN, None, 1, 1.0 and True all differ
    problems = _checked.get(key)
    if problems is None:
        problems = _checked[key] = _model_param_problems(cfg)
    if problems:
        raise ConfigError(file, list(problems))


def _model_param_problems(cfg: PipelineConfig) -> tuple[tuple[str, str], ...]:
    est = _estimator(cfg.model.model_copy(update={"params": {}}), cfg.target.task, cfg.training.seed)
    valid = set(est.get_params(deep=False))
    if cfg.model.type == "xgboost":  # native booster names and aliases are accepted as keyword arguments too
        valid |= XGBOOST_NATIVE_PARAMS
    bad = [k for k in cfg.model.params if k not in valid]
    if bad:
        from ctpipeline.config.loader import did_you_mean

        return tuple(
            (f"model.params.{k}", f"not a parameter of {type(est).__name__}{did_you_mean(k, valid)}") for k in bad
        )
    problem = param_value_problem(cfg)
    return (problem,) if problem else ()


# XGBoost reports a parameter under its canonical name; the YAML may use an alias.
XGBOOST_ALIASES = {
    "learning_rate": "eta",
    "reg_lambda": "lambda",
    "reg_alpha": "alpha",
    "gamma": "min_split_loss",
    "random_state": "seed",
    "n_jobs": "nthread",
}


def _key_for(name: str | None, params: dict[str, Any]) -> str:
    if name in params:
        return f"model.params.{name}"
    alias = XGBOOST_ALIASES.get(name or "")
    return f"model.params.{alias}" if alias in params else "model.params"


def param_value_problem(cfg: PipelineConfig) -> tuple[str, str] | None:
    """(key, reason) for the first hyper-parameter value the estimator refuses, or None."""
    import re

    params = cfg.model.params
    est = _estimator(cfg.model.model_copy(update={"device": "cpu"}), cfg.target.task, cfg.training.seed)
    if cfg.model.type != "xgboost":
        try:
            est._validate_params()  # scikit-learn's own constraints (type and range of each parameter)
        except (TypeError, ValueError) as exc:
            found = re.search(r"The '(\w+)' parameter", str(exc))
            return _key_for(found and found.group(1), params), str(exc)
        return None
    n = est.get_params().get("n_estimators")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
        return _key_for("n_estimators", params), f"must be an integer, got {n!r}"
    if n is not None and n < 1:
        return _key_for("n_estimators", params), f"must be at least 1, got {n}"
    return _xgboost_problem(est, params)


def _xgboost_problem(est, params: dict[str, Any]) -> tuple[str, str] | None:
    """XGBoost validates booster parameters when a booster is configured: build one on a two-row matrix (no
    training) and ask for its configuration."""
    import re

    import numpy as np
    import xgboost as xgb

    booster_params = {k: v for k, v in est.get_xgb_params().items() if v is not None}
    booster_params.update({"nthread": 1, "device": "cpu"})
    try:
        d = xgb.DMatrix(np.array([[0.0], [1.0]]), label=np.array([0.0, 1.0]))
        xgb.Booster(params=booster_params, cache=[d]).save_config()
    except (xgb.core.XGBoostError, TypeError, ValueError) as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        found = re.search(r"Parameter (?:format for )?(\w+)", msg)
        return _key_for(found and found.group(1), params), msg
    return None


def requirements_for(cfg: PipelineConfig) -> list[str]:
    return list(REQUIREMENTS[cfg.model.type])
