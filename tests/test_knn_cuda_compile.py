"""kNN's CUDA kernels compile for real with numba-cuda (no GPU needed): sm_80 and sm_90, float32 and float64.

Each kernel is compiled to PTX with its launch signature and linked with nvJitLink, whose info log gives
registers and spills. Held: no register spills and no stack frame, no float64 instruction in a float32
variant, no 64-bit integer division or remainder inside the kernel's loops.
"""

import re
import types

import numpy as np
import pytest

numba = pytest.importorskip("numba")
cuda = pytest.importorskip("numba.cuda")
nvjitlink = pytest.importorskip("cuda.bindings.nvjitlink")

from gpunn.kernels import cluster_sums, knn_ivf, knn_l1, knn_l2, topk  # noqa: E402


def signatures():
    """(name, kernel, argument types, dtype name) for every kNN CUDA kernel as the launches call it."""
    i64 = numba.int64
    for dt in (numba.float32, numba.float64):
        A2, A1, I2, I1 = dt[:, ::1], dt[::1], i64[:, ::1], i64[::1]
        host = np.dtype(str(dt))
        for gathered in (False, True):
            yield (f"topk.select{'_gathered' if gathered else ''}", topk.SELECT_CUDA[(host, gathered)],
                   (A2, I2, i64, A2, I2, dt), str(dt))
        yield "knn_l1.distances", knn_l1.DISTANCES_CUDA[host], (A2, A2, A2, dt), str(dt)
        yield "knn_l2.distances", knn_l2.distances_cuda, (A2, A1, A1, numba.boolean, dt, dt), str(dt)
        yield "cluster_sums.sums", cluster_sums.sums_cuda, (A2, I1, A2), str(dt)
        yield ("knn_ivf.candidates", knn_ivf.candidates_cuda, (A2, A1, A2, A1, I1, I1, I2, i64, i64, dt, dt, dt, A2, I2),
               str(dt))


def link_log(ptx: str, arch: str) -> str:
    handle = nvjitlink.create(2, [f"-arch=sm_{arch}", "-verbose"])
    data = ptx.encode()
    nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
    nvjitlink.complete(handle)
    log = bytearray(nvjitlink.get_info_log_size(handle))
    nvjitlink.get_info_log(handle, log)
    nvjitlink.destroy(handle)
    return log.decode(errors="replace")


@pytest.fixture(autouse=True)
def offline_device(monkeypatch):
    """Device functions ask the current device for its compute capability: answer without a GPU."""
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: types.SimpleNamespace(compute_capability=(9, 0)))


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
@pytest.mark.parametrize("name,kernel,sig,dtype", list(signatures()), ids=lambda v: v if isinstance(v, str) else "")
def test_kernel_compiles_without_spills(name, kernel, sig, dtype, cc):
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
    log = link_log(ptx, f"{cc[0]}{cc[1]}")
    spills = [int(v) for v in re.findall(r"(\d+) bytes spill stores", log)]
    stack = [int(v) for v in re.findall(r"(\d+) bytes stack frame", log)]
    registers = [int(v) for v in re.findall(r"Used (\d+) registers", log)]
    print(f"{name} {dtype} sm_{cc[0]}{cc[1]}: registers {registers}, spill stores {spills}, stack {stack}")
    assert registers and spills and all(v == 0 for v in spills + stack), log
    if dtype == "float32":
        assert not re.search(r"\.f64\b", ptx), "a float64 instruction in the float32 variant"
    divisions = len(re.findall(r"\b(?:div|rem)\.[su]64\b", ptx))
    assert divisions <= DIVISIONS.get(name, 0), f"{divisions} 64-bit integer divisions"


# knn_l2.distances and cluster_sums.sums stride over rows with a variable step: LLVM divides once per thread,
# for the trip count, before the loop (behind a 32-bit fast path); nothing divides inside a loop.
DIVISIONS = {"knn_l2.distances": 1, "cluster_sums.sums": 1}
