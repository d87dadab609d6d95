"""The op mechanism (kernels/op.py): the registry, the choice of kernel or reference, and what it must not change."""

import os
import subprocess
import sys

import numpy as np
import pytest

from kernel_cases import poisoned_outputs  # noqa: F401

import gpunn as gn
from gpunn import ops
from gpunn.kernels.op import MIN_SIZE, REGISTRY


def test_every_op_is_registered_by_its_definition_with_a_cpu_kernel():
    assert {"activation", "bias_activation", "dropout_forward", "update_step", "nonfinite_check", "fused_loss",
            "im2col", "conv_direct", "matmul", "max_pool_forward"} <= set(REGISTRY)
    no_kernel = {"dropout_backward", "avg_pool_forward", "avg_pool_backward"}  # their references are the fast way
    for name, op in REGISTRY.items():
        assert op.reference.__name__ == name
        assert ("cpu" in op.bindings) == (name not in no_kernel), name
    active = ops.active_kernels()
    assert active["activation[cpu]"] == "gpunn.kernels.activations" and active["dropout_backward[cpu]"] == "reference"


def test_the_kernel_is_chosen_by_device_and_size_and_can_be_switched_off(rng, monkeypatch):
    calls = []

    def counting(x, gate):
        calls.append(x.size)
        return ops.activation.reference(x, gate)

    monkeypatch.setitem(ops.activation.bindings, "cpu", counting)
    big, small = rng.standard_normal(MIN_SIZE["cpu"]), rng.standard_normal(MIN_SIZE["cpu"] - 1)
    np.testing.assert_array_equal(gn.nn.ReLU().to("float64").forward(big), np.maximum(big, 0))
    gn.nn.ReLU().to("float64").forward(small)  # under the threshold: the reference
    assert calls == [big.size]
    with ops.use_kernels(False):
        gn.nn.ReLU().to("float64").forward(big)
    assert calls == [big.size]  # switched off: the reference ran
    ops.activation.with_kernel(small, gn.nn.ReLU())
    assert calls == [big.size, small.size]


def test_a_binding_that_declines_leaves_the_op_to_its_reference(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)

    class OwnRule(gn.nn.ReLU):  # its f without a scalar twin: no kernels, so the binding declines
        def f(self, x):
            return x

    assert ops.activation.with_kernel(x, OwnRule()) is x


def test_the_environment_switch_keeps_every_op_on_its_reference():
    code = "import gpunn; print(sorted(set(gpunn.ops.active_kernels().values())))"
    env = dict(os.environ, GPUNN_KERNELS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['reference']"


def test_a_kernel_for_an_unknown_device_type_is_refused():
    with pytest.raises(ValueError, match="device type must be 'cpu' or 'cuda', got 'tpu'"):
        ops.activation.kernel("tpu")


def test_arrays_from_another_device_are_refused(gpu, rng):
    x = rng.standard_normal(10).astype(np.float32)
    with pytest.raises(ValueError, match=f"activation_backward: saved is on {gpu} but x is on cpu: .*share a device"):
        ops.activation_backward.with_kernel(x, gpu.asarray(x), gn.nn.ReLU())


@pytest.mark.parametrize("kind", sorted(gn.nn.ACTIVATIONS))
def test_bias_activation_backward_is_activation_backward_plus_bias_sum(kind, device, rng):
    z, b, dout = (device.asarray(a) for a in (rng.standard_normal((6, 5)), rng.standard_normal(5),
                                              rng.standard_normal((6, 5))))
    cls = gn.nn.ACTIVATIONS[kind]
    gate = cls(alpha=0.1) if "alpha" in cls.numbers else cls()
    with device:  # z.copy() and z + b are CuPy's own operations: they run on the current device
        zb = z + b
        y = ops.bias_activation(z.copy(), b, gate)
    np.testing.assert_allclose(gn.to_numpy(y), gn.to_numpy(ops.activation(zb, gate)), rtol=1e-12)
    saved = zb if gate.backward_from == "input" else y
    dz, db = ops.bias_activation_backward(dout, saved, gate)
    np.testing.assert_allclose(gn.to_numpy(dz), gn.to_numpy(ops.activation_backward(dout, saved, gate)))
    np.testing.assert_allclose(gn.to_numpy(db), gn.to_numpy(dz).sum(axis=0), rtol=1e-12)


def test_kernels_change_no_training_result(rng):
    """A whole training run gives the same weights with the kernels on and off.

    In float64: Adam divides by the root of each gradient's square, so in float32 a gradient near zero whose
    last bits differ between the two paths can move its weight by much more than a rounding error.
    """
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 4, 300)
    runs = []
    for enabled in (True, False):
        with ops.use_kernels(enabled):
            model = gn.nn.Sequential(gn.nn.Linear(20, 256, rng=0), gn.nn.ReLU(), gn.nn.Dropout(0.3),
                                     gn.nn.Linear(256, 4, rng=1)).to(dtype="float64")
            opt = gn.optim.Adam(model.parameters(), lr=1e-3)
            gn.Trainer(model, gn.nn.SoftmaxCrossEntropy(), opt, batch_size=100, epochs=3, device="cpu",
                       progress=False).fit(X, y)
            runs.append(model.state_dict())
    for k in runs[0]:
        assert runs[0][k].dtype == np.float64
        np.testing.assert_allclose(runs[0][k], runs[1][k], rtol=1e-10, atol=1e-12, err_msg=k)
