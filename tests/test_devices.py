import sys
import warnings
import numpy as np
import pytest

import gpunn as gn
from gpunn.devices import adopt


def test_cpu_and_auto_resolve():
    assert gn.device("cpu") == gn.Device("cpu")
    assert gn.device("CPU").type == "cpu"
    auto = gn.device("auto")
    assert auto.type == ("cuda" if gn.cuda_available() else "cpu")
    assert gn.device(None) == auto
    assert gn.device(auto) is auto


def test_cpu_device_supplies_numpy(rng):
    dev = gn.device("cpu")
    assert dev.xp is np
    a = dev.asarray(rng.standard_normal(5).tolist(), dtype="float32")
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    dev.synchronize()  # a no-op on the CPU, and must not fail


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:1", "tpu", ""])
def test_unknown_device_names_are_refused(spec):
    with pytest.raises(ValueError, match="device"):
        gn.device(spec)


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="device must be"):
        gn.device(3)


@pytest.mark.skipif(gn.cuda_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_gpu_is_one_clear_line(spec):
    assert gn.cuda_available() is False
    with pytest.raises(ValueError) as info:
        gn.device(spec)
    message = str(info.value)
    assert "no usable CUDA GPU" in message and "\n" not in message


def test_to_numpy_accepts_arrays_lists_and_parameters(rng):
    x = rng.standard_normal((3, 2))
    assert gn.to_numpy(x) is x
    np.testing.assert_array_equal(gn.to_numpy(x.tolist()), x)
    np.testing.assert_array_equal(gn.to_numpy(gn.nn.Parameter(x)), x)


def test_adopt_casts_and_refuses_non_numbers(rng):
    cpu = gn.device("cpu")
    x = adopt(rng.standard_normal((2, 2)), cpu, "x", np.float32)
    assert x.dtype == np.float32
    with pytest.raises(TypeError, match="x must hold numbers"):
        adopt(np.array(["a", "b"]), cpu, "x")


def test_cuda_arrays_roundtrip_and_mixing_is_refused(gpu, rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    g = gpu.asarray(x)
    assert gn.device_of(g) == gpu and gpu.xp.__name__ == "cupy"
    np.testing.assert_array_equal(gn.to_numpy(g), x)
    with pytest.raises(ValueError, match=f"is on {gpu} but the computation is on cpu"):
        adopt(g, gn.device("cpu"), "x")


class CUDARuntimeError(RuntimeError):
    """CuPy's runtime error as CuPy 14 raises it: the CUDA status code in ``status``, its name first in the text."""

    def __init__(self, status: int, name: str, text: str):
        super().__init__(f"{name}: {text}")
        self.status = status


def cupy_whose_device_count_fails(monkeypatch, error: CUDARuntimeError, driver_version: int):
    """A CuPy whose getDeviceCount raises ``error``; cudaDriverGetVersion answers ``driver_version`` (0: no driver).

    The no-GPU case as CuPy 14.2 (cupy-cuda12x) shows it on a machine without an NVIDIA driver: status 35
    (cudaErrorInsufficientDriver) and a driver version of 0; a runtime built for CUDA 12.9.
    """
    import types

    def device_count():
        raise error

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=device_count, driverGetVersion=lambda: driver_version, runtimeGetVersion=lambda: 12090))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(gn.devices, "_FALLBACK_TOLD", [False])
    gn.devices._cuda_probe.cache_clear()


INSUFFICIENT = (35, "cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version")


@pytest.fixture
def broken_cupy(monkeypatch):
    """A CuPy whose driver call fails for a reason gpunn does not explain further."""
    cupy_whose_device_count_fails(monkeypatch, CUDARuntimeError(999, "cudaErrorUnknown", "unknown error"), 12020)
    yield
    gn.devices._cuda_probe.cache_clear()


def test_why_cuda_is_unusable_is_told(broken_cupy):
    assert not gn.cuda_available()
    reason = gn.cuda_unavailable_reason()
    assert "getDeviceCount" in reason and "cudaErrorUnknown" in reason
    with pytest.raises(ValueError, match="no usable CUDA GPU was found: the CUDA driver did not answer"):
        gn.device("cuda")
    with pytest.warns(UserWarning, match="device='auto' uses the CPU: the CUDA driver did not answer"):
        assert gn.device("auto", verbose=True) == gn.Device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told once per process, and never without asking
        gn.device("auto", verbose=True)
        gn.device("auto")
    from gpunn.cli import main

    assert main(["info"]) == 0


def test_info_names_the_reason(broken_cupy, capsys):
    from gpunn.cli import main

    main(["info"])
    assert "CUDA devices: 0 (device='auto' uses the CPU): the CUDA driver did not answer" in capsys.readouterr().out


@pytest.mark.parametrize(
    "error,driver,reason",
    [
        (INSUFFICIENT, 0, "no NVIDIA driver is installed on this machine (cudaDriverGetVersion reports none), so it "
                          "has no GPU that CUDA can use"),
        (INSUFFICIENT, 11040, "the NVIDIA driver supports CUDA up to 11.4, older than the CUDA 12.9 this CuPy was "
                              "built for: update the driver, or install the CuPy wheel for CUDA 11 (cudaErrorInsufficientDriver)"),
        ((100, "cudaErrorNoDevice", "no CUDA-capable device is detected"), 12020,
         "the NVIDIA driver (CUDA 12.2) is installed but finds no GPU (cudaErrorNoDevice)"),
        ((100, "cudaErrorNoDevice", "no CUDA-capable device is detected"), 0,
         "no NVIDIA driver is installed on this machine"),
    ],
)
def test_no_driver_is_told_apart_from_an_old_one(monkeypatch, error, driver, reason):
    cupy_whose_device_count_fails(monkeypatch, CUDARuntimeError(*error), driver)
    try:
        assert gn.cuda_unavailable_reason().startswith(reason)
        if driver == 0:
            assert "insufficient" not in gn.cuda_unavailable_reason()
    finally:
        gn.devices._cuda_probe.cache_clear()


def test_real_cupy_on_a_machine_without_a_driver():
    """Where CuPy is installed and no NVIDIA driver is, the reason says so (not 'driver version is insufficient')."""
    cupy = pytest.importorskip("cupy")
    try:
        driver = cupy.cuda.runtime.driverGetVersion()
    except Exception as e:
        pytest.skip(f"cudaDriverGetVersion failed: {e}")
    if driver != 0:
        pytest.skip("an NVIDIA driver is installed here")
    gn.devices._cuda_probe.cache_clear()
    reason = gn.cuda_unavailable_reason()
    assert reason.startswith("no NVIDIA driver is installed on this machine") and "insufficient" not in reason


def test_without_cupy_the_reason_says_what_to_install():
    if gn.cuda_available():
        pytest.skip("CuPy works here")
    reason = gn.cuda_unavailable_reason()
    assert reason and ("CuPy" in reason or "driver" in reason)
