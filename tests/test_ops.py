import os
import subprocess
import sys

import numpy as np
import pytest

import gpunn as gn
from gpunn import ops


def test_a_registered_kernel_is_chosen_by_device_and_can_be_removed(rng):
    x = rng.standard_normal((3, 4))
    installed = ops._KERNELS.get(("activation", "cpu"))
    calls = []

    def fake(x, kind, alpha=0.0):
        calls.append(kind)
        return ops.activation.reference(x, kind, alpha)

    ops.register("activation", "cpu", fake)
    try:
        np.testing.assert_array_equal(gn.nn.ReLU().to("float64").forward(x), np.maximum(x, 0))
        assert calls == ["relu"]
        assert ops.active_kernels()["activation[cpu]"].endswith("fake")
        with ops.use_kernels(False):
            gn.nn.ReLU().forward(x)
        assert calls == ["relu"]  # switched off: the reference ran
        ops.register("activation", "cpu", None)
        assert ops.active_kernels()["activation[cpu]"] == "reference"
    finally:
        ops.register("activation", "cpu", installed)


def test_import_installs_the_cpu_kernels_and_the_switch_keeps_references():
    active = ops.active_kernels()
    assert all(active[f"{name}[cpu]"].startswith("gpunn.kernels") for name in ops.KERNEL_OPS)
    code = "import gpunn; print(sorted(set(gpunn.ops.active_kernels().values())))"
    env = dict(os.environ, GPUNN_KERNELS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['reference']"


def test_register_refuses_unknown_ops_and_devices():
    with pytest.raises(ValueError, match="unknown op 'softplus'"):
        ops.register("softplus", "cpu", abs)
    with pytest.raises(ValueError, match="device_type must be 'cpu' or 'cuda'"):
        ops.register("activation", "tpu", abs)


def test_unknown_activation_is_named(rng):
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ops.activation(rng.standard_normal(3), "swish")


@pytest.mark.parametrize("kind", ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh"])
def test_bias_activation_backward_is_activation_backward_plus_bias_sum(kind, device, rng):
    z, b, dout = (device.asarray(a) for a in (rng.standard_normal((6, 5)), rng.standard_normal(5),
                                              rng.standard_normal((6, 5))))
    with device:  # z.copy() and z + b are CuPy's own operations: they run on the current device
        y = ops.bias_activation(z.copy(), b, kind, 0.1)
        zb = z + b
    np.testing.assert_allclose(gn.to_numpy(y), gn.to_numpy(ops.activation(zb, kind, 0.1)), rtol=1e-12)
    dz, db = ops.bias_activation_backward(dout, y, kind, 0.1)
    np.testing.assert_allclose(gn.to_numpy(dz), gn.to_numpy(ops.activation_backward(dout, y, kind, 0.1)))
    np.testing.assert_allclose(gn.to_numpy(db), gn.to_numpy(dz).sum(axis=0), rtol=1e-12)
