"""`model.device: cuda` either trains on a GPU or fails when training starts, never silently on the CPU.

XGBoost moves a `device="cuda"` model to the CPU with only a warning when its build has no CUDA (the pinned
`xgboost-cpu`) or when no GPU is visible. `require_cuda()` checks both before a fit and says what to do.
"""

from __future__ import annotations

import warnings

from ctpipeline.errors import CtpError

INSTALL_HINT = "install the CUDA build of XGBoost with `make venv GPU=1` (README, 'GPU training')"


class GpuUnavailable(CtpError):
    """`device: cuda` was asked for, but this process cannot train on a GPU."""


def require_cuda() -> None:
    """Raise GpuUnavailable unless XGBoost is built with CUDA and sees a GPU (a two-tree fit on 8 rows)."""
    import numpy as np
    import xgboost

    if not xgboost.build_info().get("USE_CUDA"):
        raise GpuUnavailable(
            f"model.device is 'cuda' but the installed XGBoost has no CUDA support: {INSTALL_HINT}, "
            "or set model.device: cpu"
        )
    X = np.arange(16, dtype="float32").reshape(8, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xgboost.XGBClassifier(n_estimators=2, device="cuda").fit(X, np.arange(8) % 2)
    fallback = [str(w.message) for w in caught if "GPU" in str(w.message) and "CPU" in str(w.message)]
    if fallback:
        raise GpuUnavailable(
            f"model.device is 'cuda' but XGBoost found no usable GPU ({fallback[0].strip()}); "
            "run on a machine with an NVIDIA GPU and driver, or set model.device: cpu"
        )
