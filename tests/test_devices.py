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


@pytest.mark.cuda
@pytest.mark.skipif(not gn.cuda_available(), reason="no usable CUDA GPU")
def test_cuda_arrays_roundtrip_and_mixing_is_refused(rng):
    dev = gn.device("cuda")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    g = dev.asarray(x)
    assert gn.device_of(g) == dev and dev.xp.__name__ == "cupy"
    np.testing.assert_array_equal(gn.to_numpy(g), x)
    with pytest.raises(ValueError, match="is on cuda:0 but the computation is on cpu"):
        adopt(g, gn.device("cpu"), "x")
