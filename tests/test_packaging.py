"""The CUDA extras resolve, on PyPI, to a stack that can run gpunn on a GPU with no system CUDA toolkit.

pip's resolver (``pip install --dry-run --report``) says what ``pip install -e ".[cuda13]"`` would
install, without installing it and without a GPU: cuBLAS must be there (the first ``x @ W``
needs it), and numba-cuda recent enough to launch on CuPy arrays without a sync per launch.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def resolve(extra: str, tmp_path) -> dict:
    report = tmp_path / f"{extra}.json"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                          "--report", str(report), f"{ROOT}[{extra}]"], capture_output=True, text=True, timeout=300)
    if run.returncode != 0 and any(s in run.stderr for s in ("NewConnectionError", "Temporary failure in name",
                                                           "Network is unreachable", "ConnectTimeout")):
        pytest.skip("PyPI cannot be reached")
    assert run.returncode == 0, run.stderr[-2000:]
    return {item["metadata"]["name"].lower(): Version(item["metadata"]["version"])
            for item in json.loads(report.read_text())["install"]}


@pytest.mark.network
@pytest.mark.parametrize("extra,cuda", [("cuda12", 12), ("cuda13", 13)])
def test_cuda_extras_bring_cublas_and_a_sync_free_numba_cuda(extra, cuda, tmp_path):
    stack = resolve(extra, tmp_path)
    assert f"cupy-cuda{cuda}x" in stack
    cublas = [name for name in stack if name.startswith("nvidia-cublas")]
    assert cublas, f"no cuBLAS in {sorted(stack)}"
    assert any(name.startswith("nvidia-cuda-nvrtc") for name in stack)  # CuPy compiles its kernels with NVRTC
    assert stack["numba-cuda"] >= Version("0.25")
    assert any(name.startswith("nvidia-nvvm") or name == "cuda-toolkit" for name in stack)  # Numba's NVVM
