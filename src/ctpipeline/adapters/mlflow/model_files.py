"""What ``mlflow.sklearn.log_model`` is given for one of the pipeline's models: the signature on the raw columns,
the pyfunc predict function, the serializer with its trusted types, pinned requirements and the feature code."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.mlflow.common import quiet_mlflow

if TYPE_CHECKING:  # pragma: no cover
    import pandas

log = logging.getLogger(__name__)


def installed_requirements(packages: list[str]) -> list[str]:
    """Pinned ``name==version`` strings for the given *distribution* names that are installed.

    Names that are not installed are skipped (so ``["xgboost-cpu", "xgboost"]`` yields whichever
    of the two is present). Duplicates are removed, order is kept. The name is written as given
    by the caller, the version as installed.
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in packages:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(key)
        out.append(f"{name}=={version}")
    return out


def _signature_output(model: Any, sample: pandas.DataFrame) -> tuple[Any, str]:
    """Output used for the signature and the matching pyfunc predict function."""
    from sklearn.base import is_classifier

    if is_classifier(model) and hasattr(model, "predict_proba"):
        return model.predict_proba(sample), "predict_proba"
    return model.predict(sample), "predict"


def _any_time_columns(signature: Any, example: pandas.DataFrame) -> Any:
    """The signature with every datetime column typed ``Any``: MLflow's ``datetime`` casts to naive
    ``datetime64[ns]`` and refuses tz-aware values, while the model's own transform takes ISO strings,
    naive (UTC) and aware timestamps alike."""
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    times = {c for c in example.columns if pd.api.types.is_datetime64_any_dtype(example[c])}
    if not times or signature.inputs is None:
        return signature
    cols = [ColSpec(AnyType(), c.name, required=c.required) if c.name in times else c for c in signature.inputs.inputs]
    return ModelSignature(inputs=Schema(cols), outputs=signature.outputs, params=signature.params)


def feature_code(dst: Path) -> list[str]:
    """A minimal ``ctpipeline`` package holding ``core/features.py`` (numpy, pandas, scikit-learn only), for the
    model's ``code_paths``: the logged Pipeline then loads where ctpipeline is not installed."""
    from ctpipeline.core import features

    pkg = dst / "ctpipeline"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""The parts of ctpipeline a logged model needs."""\n', encoding="utf-8")
    (pkg / "core" / "__init__.py").write_text("", encoding="utf-8")
    shutil.copyfile(features.__file__, pkg / "core" / "features.py")
    return [str(pkg)]


def _serialization_for(model: Any) -> tuple[str, list[str] | None]:
    """Prefer skops (MLflow 3's default, no arbitrary code on load). Types skops does not know
    (e.g. ``xgboost.sklearn.XGBClassifier``) are listed as trusted: the model is our own output.
    Falls back to cloudpickle when skops cannot serialise the object at all."""
    try:
        import skops.io as sio

        data = sio.dumps(model)
        trusted = list(sio.get_untrusted_types(data=data))
        restored = sio.loads(data, trusted=trusted)
        del restored
        return "skops", trusted or None
    except Exception as exc:  # noqa: BLE001 - any skops failure means: use cloudpickle
        log.info("model not serialisable with skops (%s); using cloudpickle", exc)
        return "cloudpickle", None


def _with_serializer_requirement(reqs: list[str], fmt: str) -> list[str]:
    dist = {"skops": "skops", "cloudpickle": "cloudpickle"}.get(fmt)
    if dist is None:  # plain pickle: standard library
        return list(reqs)
    names = {re.split(r"[=<>!~ \[;]", r, maxsplit=1)[0].strip().lower() for r in reqs}
    if dist in names:
        return list(reqs)
    return [*reqs, *installed_requirements([dist])]


def log_model_kwargs(
    model: Any, example: pandas.DataFrame, pip_requirements: list[str], serialization_format: str | None
) -> dict[str, Any]:
    """The arguments of ``mlflow.sklearn.log_model`` that describe the model: signature, example,
    pyfunc predict function, serializer (with its trusted types) and pip requirements."""
    from mlflow.models import infer_signature

    with quiet_mlflow():
        output, predict_fn = _signature_output(model, example)
        signature = _any_time_columns(infer_signature(example, output), example)
    if serialization_format is None:
        fmt, trusted = _serialization_for(model)
    else:
        fmt, trusted = serialization_format, None
        if fmt == "skops":
            _, trusted = _serialization_for(model)
    return {
        "signature": signature,
        "input_example": example,
        "pip_requirements": _with_serializer_requirement(list(pip_requirements), fmt),
        "serialization_format": fmt,
        "skops_trusted_types": trusted,
        "pyfunc_predict_fn": predict_fn,
    }
