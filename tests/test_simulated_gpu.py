"""The simulated GPU is at least as strict as the real thing: held to the installed CuPy, and to CUDA's rules.

Real CuPy installs and imports without a GPU, and its arrays can be built over a dummy device pointer:
it then refuses a bad idiom before touching the device. Those answers, and its namespace and
signatures, are read in a subprocess (the stand-in holds the name ``cupy`` in this one) and compared.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulated_gpu import kernel_launches, strict_cupy
from simulated_gpu.idioms import IDIOMS, outcome

HERE = Path(__file__).parent
pytestmark = pytest.mark.gpu_sim


def _real_cupy(code: str):
    """Run ``code`` (printing JSON) in a fresh interpreter that imports the real CuPy; skip where there is none."""
    probe = subprocess.run([sys.executable, "-c", "import cupy"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("real CuPy is not installed (pip install -e '.[gpu-check]'): nothing to hold the stand-in to")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=HERE, timeout=300,
                         env={k: v for k, v in __import__("os").environ.items() if k != "NUMBA_ENABLE_CUDASIM"})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def real_outcomes():
    return _real_cupy("import json, sys; from simulated_gpu.idioms import real_cupy_outcomes; "
                      "json.dump(real_cupy_outcomes(), sys.stdout)")


def _fake_outcome(fn):
    return outcome(fn, strict_cupy._MODULE, lambda shape, dtype=np.float32: strict_cupy.ndarray(shape, dtype))


@pytest.mark.parametrize("idiom", IDIOMS)
def test_the_stand_in_refuses_what_cupy_refuses(idiom, real_outcomes):
    real = real_outcomes[idiom]
    fake = _fake_outcome(IDIOMS[idiom])
    if real in ("ok", "reached the driver"):  # CuPy accepts it: the stand-in may too (or be stricter)
        return
    assert fake == real, f"{idiom}: real CuPy raises {real}, the simulated GPU {fake}"


def test_the_snapshot_names_only_what_cupy_has():
    """Every name, method and keyword the stand-in offers exists in the installed CuPy (a subset, so never laxer)."""
    real = _real_cupy("import json, sys; from simulated_gpu.snapshot import snapshot; json.dump(snapshot(), sys.stdout)")
    ours = strict_cupy.API
    wrong = []
    for section in ("ndarray", "random.Generator"):
        wrong += _compare(section, ours[section], real[section])
    for top in ("cupy", "cupyx"):
        for path, names in ours[top].items():
            wrong += _compare(f"{top}.{path}".rstrip("."), names, real[top].get(path, {}))
    for path, names in ours["private"].items():  # the compute types: names, signatures and the constants' values
        theirs = real["private"].get(path, {})
        wrong += _compare(f"cupy.{path}", names, theirs)
        wrong += [f"cupy.{path}.{name} = {spec['value']}, CuPy's is {theirs[name].get('value')}"
                  for name, spec in names.items() if "value" in spec and name in theirs
                  and theirs[name].get("value") != spec["value"]]
    assert not wrong, "the snapshot is laxer than the installed CuPy " + \
        f"{real['cupy_version']} (regenerate it with tests/simulated_gpu/snapshot.py):\n" + "\n".join(wrong[:40])


def _compare(where: str, ours: dict, real: dict) -> list[str]:
    wrong = []
    for name, spec in ours.items():
        theirs = real.get(name)
        if theirs is None:
            wrong.append(f"{where}.{name}: not in CuPy")
        elif set(spec.get("methods", ())) - set(theirs.get("methods", ())):
            wrong.append(f"{where}.{name}: takes methods {spec['methods']}, CuPy {theirs.get('methods')}")
        elif spec.get("params") and theirs.get("params"):
            p, q = spec["params"], theirs["params"]
            extra = set(p["keywords"]) - set(q["keywords"]) if not q["varkw"] else set()
            if extra or (q["positional"] != -1 and (p["positional"] == -1 or p["positional"] > q["positional"])):
                wrong.append(f"{where}.{name}: takes {p}, CuPy takes {q}")
    return wrong


# --------------------------------------------------------------------------- rules no dummy pointer can show


def test_arrays_remember_their_device_and_refuse_mixing():
    with strict_cupy.visible():
        a = strict_cupy.ndarray((3,), np.float32)
        with strict_cupy.Device(1):
            b = strict_cupy._MODULE.zeros(3, np.float32)
            assert b.device.id == 1
            with pytest.raises(ValueError, match="different from the current device"):
                b + a
            assert (b + 1).device.id == 1
            moved = strict_cupy._MODULE.asarray(a)  # cupy.asarray copies an array of another device
            assert moved.device.id == 1 and moved is not a
        with pytest.raises(ValueError, match=r"resides \(1\)"):
            b * 2


def test_numpy_operands_and_outputs_are_refused():
    cp = strict_cupy._MODULE
    a = cp.ones(4, np.float32)
    for bad in (lambda: a + np.ones(4, np.float32), lambda: cp.maximum(a, np.zeros(4, np.float32)),
                lambda: cp.add(a, 1, out=np.empty(4, np.float32)), lambda: np.concatenate([a, np.ones(2)])):
        with pytest.raises(TypeError):
            bad()
    assert isinstance(a.sum(), strict_cupy.ndarray) and a.sum().shape == ()  # reductions stay on the device
    assert (a + np.float32(2)).dtype == np.float32  # NumPy *scalars* are scalars, as in CuPy


def test_host_reads_are_refused_when_synchronising_is():
    cp = strict_cupy._MODULE
    a = cp.arange(6, dtype=np.float32)
    reads = [lambda: float(a[0]), lambda: a.get(), lambda: a[0].item(), lambda: a.tolist(),
             lambda: a[a > 2], lambda: cp.nonzero(a), lambda: bool(a[1]), lambda: strict_cupy.Event().synchronize()]
    with strict_cupy.allow_synchronize(False):
        for read in reads:
            with pytest.raises(strict_cupy.DeviceSynchronized):
                read()
    before = strict_cupy.READS[0]
    float(a[0])
    assert strict_cupy.READS[0] == before + 1


def test_numba_cuda_types_device_arrays_through_their_dlpack_export():
    """A launch's argument types come from numba-cuda's own ``typeof``, which reads CuPy's arrays by DLPack."""
    cp = strict_cupy._MODULE
    with strict_cupy.visible():
        a = cp.zeros((3, 4), np.float32)
        assert kernel_launches.describe(a) == ("array", "float32", 2, "C")
        assert kernel_launches.describe(a.T) == ("array", "float32", 2, "F")
        assert kernel_launches.describe(a[:, ::2]) == ("array", "float32", 2, "A")
        assert kernel_launches.describe((a, a))[:2] == ("tuple", (("array", "float32", 2, "C"),) * 2)
        assert a.__dlpack_device__() == (2, 0)  # (kDLCUDA, device): as CuPy answers
        cai = a.__cuda_array_interface__
        assert cai["version"] == 3 and cai["shape"] == (3, 4) and cai["strides"] is None and cai["stream"] == 1


def test_ufunc_methods_and_list_operands_are_refused_as_cupy_refuses_them():
    cp = strict_cupy._MODULE
    with strict_cupy.visible():
        a = cp.arange(4, dtype=np.float32)
        for call in (lambda: cp.maximum.reduce(a), lambda: cp.minimum.accumulate(a),
                     lambda: cp.multiply.at(a, cp.arange(2), 2.0)):
            with pytest.raises(NotImplementedError, match="is not supported yet"):
                call()
        assert float(cp.add.reduce(a)) == 6.0  # what CuPy does have
        for call in (lambda: a[:2] + [1.0, 2.0], lambda: cp.maximum(a, [0.0] * 4)):
            with pytest.raises(TypeError, match="Unsupported type <class 'list'>"):
                call()


def test_launches_are_checked_as_a_gpu_would():
    from numba import cuda

    import gpunn as gn

    cp = strict_cupy._MODULE
    relu = gn.nn.ReLU()
    forward_cuda = relu.kernels.forward.cuda
    with strict_cupy.visible():
        x = cp.ones(8, np.float32)
        y = cp.empty(8, np.float32)
        args = (x, y, relu.kernel_numbers(np.dtype(np.float32)))
        with cuda.gpus[0]:
            forward_cuda[1, 32, cuda.default_stream()](*args)
            assert y.get().tolist() == [1.0] * 8
            with pytest.raises(kernel_launches.LaunchError, match="outside the hardware's limits"):
                forward_cuda[0, 32, cuda.default_stream()](*args)
            with pytest.raises(kernel_launches.LaunchError, match="stream"):
                forward_cuda[1, 32](*args)
            with pytest.raises(kernel_launches.LaunchError, match="NumPy array"):
                forward_cuda[1, 32, cuda.default_stream()](x, np.empty(8, np.float32), *args[2:])
            with pytest.raises(kernel_launches.LaunchError, match="NumPy array"):  # inside a tuple of arrays too
                forward_cuda[1, 32, cuda.default_stream()](x, y, (x, np.empty(8, np.float32)))
        with strict_cupy.Device(1):
            z = cp.ones(8, np.float32)
        with cuda.gpus[0], pytest.raises(kernel_launches.LaunchError, match="context of device 0"):
            forward_cuda[1, 32, cuda.default_stream()](z, z, *args[2:])
