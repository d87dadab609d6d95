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


# Kernels that see float16 arrays in mixed precision (each gate's, the epilogues, dropout, im2col, pooling, the
# fused losses): they must also have run in float16, so that their float16 variant is compiled and judged.
HALF_TOO = ("gpunn.kernels.activations.", "gpunn.kernels.conv_epilogue.", "gpunn.kernels.dropout.",
            "gpunn.kernels.im2col.", "gpunn.kernels.pooling.", "gpunn.kernels.losses.")
# Kernels of a loss-scaled step only (float32 masters, float16 gradients; batchnorm's float32 ones too): no float64.
MIXED_ONLY = ("gpunn.kernels.multi_tensor._scaled_check_cuda", "_scaled']")


def _wanted_dtypes(name: str, kernel) -> set:
    """The float dtypes a kernel must have run in: float32 and float64, float16 too, or float16 (mixed only)."""
    if name.endswith(MIXED_ONLY):
        return {"float16"}
    home = kernel.py_func.__module__
    return {"float32", "float64", "float16"} if f"{home}.".startswith(HALF_TOO) else {"float32", "float64"}


def test_every_kernel_ran_on_the_simulated_gpu_in_both_dtypes():
    """float32 and float64 for every kernel; and float16 for those a mixed-precision step launches (HALF_TOO,
    MIXED_ONLY, the latter in no float64)."""
    _needs_launches()
    missing, dtypes, wanted = [], {}, {}
    for key, kernel in _cuda_kernels().items():
        signatures = kernel_launches.LAUNCHES.get(key)
        if not signatures:
            missing.append(".".join(key))
            continue
        # a kernel made per dtype by a factory (NAME[i]) counts with its siblings: together they cover both
        family = key if "['" in key[1] else (key[0], key[1].split("[")[0])
        wanted[family] = _wanted_dtypes(".".join(key), kernel)
        dtypes.setdefault(family, set()).update(
            d[1] for sig in signatures for d in kernel_launches.flat_descriptions(sig) if d[0] == "array"
            and d[1].startswith("float"))
    short = [f"{'.'.join(family)} ({', '.join(sorted(found))} only; needs {', '.join(sorted(wanted[family]))})"
             for family, found in dtypes.items() if found and not wanted[family] <= found]
    stray = [".".join(family) for family, found in dtypes.items() if wanted[family] == {"float16"} and "float64" in found]
    assert not missing, f"CUDA kernels no simulated-GPU test launched: {missing}"
    assert not short, f"CUDA kernels not launched in every float dtype they take: {short}"
    assert not stray, f"mixed-precision kernels launched in float64: {stray}"


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


def test_float64_instructions_are_judged_in_float16_and_float32_variants():
    """The judge's own rule: a float16 signature (mixed precision: float16 arrays, float32 numbers) is held to no float64
    instruction, as a float32 one is; a float64 signature may have them."""
    report = {"module": "gpunn.kernels.m", "qualname": "k", "cc": [8, 0], "spill_stores": 0, "spill_loads": 0,
              "stack": 0, "lmem": 0, "disk_cache": True, "div64_in_loops": 0, "float64": 3}
    half = [["array", "float16", 1, "C"], ["tuple", [["scalar", "float32"]], ""]]
    single = [["array", "float32", 1, "C"], ["scalar", "int64"]]
    double = [["array", "float64", 1, "C"], ["array", "float16", 1, "C"]]
    assert [offline_compile.variant(s) for s in (half, single, double)] == ["float16", "float32", "float64"]
    for signature, flagged in ((half, True), (single, True), (double, False)):
        found = offline_compile.problems({**report, "signature": signature})
        assert bool(found) == flagged and all("float64 instructions in a float" in p for p in found)
