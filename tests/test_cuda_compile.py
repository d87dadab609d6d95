"""Every CUDA kernel, compiled by NVIDIA's compiler for sm_80 and sm_90 with the argument types gpunn launched it with.

These run last in a session (tests/conftest.py orders them): the simulated-GPU tests before them
recorded each kernel's launches (:mod:`simulated_gpu.kernel_launches`). Compilation runs in a
subprocess with numba-cuda's real compiler (NVVM, then nvJitLink); reports are cached in
``build/cuda-compile``. The table of registers, shared memory and occupancy lands in
``build/cuda-kernels.md`` (bench/GPU.md carries a copy).
"""

import importlib
import importlib.util
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SIMULATED

from simulated_gpu import kernel_launches, offline_compile

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
pytestmark = [
    pytest.mark.gpu_sim,
    pytest.mark.skipif(not SIMULATED, reason="on a real GPU the kernels are compiled by running them"),
]


def _needs_launches():
    if not kernel_launches.LAUNCHES:
        pytest.skip("no simulated-GPU test ran in this session: run with them (pytest, or pytest -m gpu_sim)")


def _cuda_kernels() -> dict:
    """{(module, locator): kernel} for every @cuda.jit kernel (not device function) in gpunn.kernels."""
    import gpunn.kernels
    from gpunn.kernels import elementwise

    found = {}
    for info in pkgutil.iter_modules(gpunn.kernels.__path__, "gpunn.kernels."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            for kernel in value.values() if isinstance(value, dict) else (value,):  # factory-made kernels by dtype
                fn = getattr(kernel, "fn", None)
                if fn is not None and hasattr(kernel, "_device") and not kernel._device and fn.__module__ == info.name:
                    found[kernel_launches.locator(kernel)] = kernel
    for kernel in elementwise.BUILT.values():  # every gate's kernels, made by the factory when the gate was defined
        found[kernel_launches.locator(kernel)] = kernel
    return found


def test_every_kernel_ran_on_the_simulated_gpu_in_both_dtypes():
    _needs_launches()
    missing, dtypes = [], {}
    for key in _cuda_kernels():
        signatures = kernel_launches.LAUNCHES.get(key)
        if not signatures:
            missing.append(".".join(key))
            continue
        # a kernel made per dtype by a factory (NAME[i]) counts with its siblings: together they cover both
        family = key if "['" in key[1] else (key[0], key[1].split("[")[0])
        dtypes.setdefault(family, set()).update(
            d[1] for sig in signatures for d in sig if d[0] == "array" and d[1].startswith("float"))
    one_dtype = [f"{'.'.join(family)} ({', '.join(sorted(found))} only)" for family, found in dtypes.items()
                 if found and found != {"float32", "float64"}]
    assert not missing, f"CUDA kernels no simulated-GPU test launched: {missing}"
    assert not one_dtype, f"CUDA kernels launched in one float dtype only: {one_dtype}"


def test_every_kernel_compiles_cleanly_for_sm80_and_sm90():
    _needs_launches()
    for module in ("numba_cuda", "cuda.bindings.nvjitlink"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[gpu-check]')")
    launches = kernel_launches.launch_list()
    BUILD.mkdir(exist_ok=True)
    (BUILD / "cuda-launches.json").write_text(json.dumps(launches, indent=1))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    run = subprocess.run([sys.executable, str(Path(offline_compile.__file__)), "-"], input=json.dumps(launches),
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    assert run.returncode == 0, run.stderr[-4000:]
    reports = json.loads(run.stdout)
    (BUILD / "cuda-kernels.md").write_text(offline_compile.markdown(reports) + "\n")
    assert len(reports) == 2 * len(launches)
    found = [p for r in reports for p in offline_compile.problems(r)]
    assert not found, f"{len(found)} problems:\n" + "\n".join(found)
