"""`device: cuda` without a usable GPU is a clear error when training starts, never a silent CPU fallback."""

import pytest
import xgboost

from ctpipeline.core.gpu import GpuUnavailable, require_cuda


@pytest.mark.skipif(xgboost.build_info().get("USE_CUDA"), reason="this XGBoost build has CUDA")
def test_cpu_build_of_xgboost_is_refused_with_the_install_path():
    with pytest.raises(
        GpuUnavailable, match="no CUDA support: install the CUDA build of XGBoost with `make venv GPU=1`"
    ):
        require_cuda()


def test_cuda_build_without_a_visible_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(xgboost, "build_info", lambda: {"USE_CUDA": True})  # a CUDA build on a machine without GPU
    try:
        require_cuda()
    except GpuUnavailable as exc:
        assert "found no usable GPU" in str(exc) and "model.device: cpu" in str(exc)
    else:  # a real GPU is visible here: the check passed, as it must
        pass
