"""The loss scaler (gpunn/loss_scaler.py): its arguments, its state, and its rule step for step against PyTorch's
GradScaler on the same gradients with the same forced overflows (scale, skipped steps, weights)."""

import numpy as np
import pytest

import gpunn as gn
from gpunn.divergence import DivergenceFlag

CASES = {  # optimizer case: (gpunn's, torch's), both given the parameters (PyTorch decays biases too)
    "sgd": (lambda ps: gn.optim.SGD(ps, lr=0.1), lambda torch, ps: torch.optim.SGD(ps, lr=0.1)),
    "momentum": (lambda ps: gn.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, decay_biases=True),
                 lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
    "adam": (lambda ps: gn.optim.Adam(ps, lr=0.01, weight_decay=0.01, decay_biases=True),
             lambda torch, ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01)),
}
OVERFLOWS = {3, 4, 10, 17, 18, 19, 26}  # steps (from 0) whose scaled gradients overflow float16
STEPS = 30


def true_gradients(rng, shapes):
    """Small gradients (1e-4 scale: float16 keeps them only once the loss is scaled), one list per step."""
    return [[(rng.standard_normal(s) * 1e-4).astype(np.float32) for s in shapes] for _ in range(STEPS)]


def gpunn_run(device, case, weights, grads, scaler_args):
    """gpunn's mixed-precision step, its parts as the Trainer calls them: float16 copies of float32 masters
    (Module.mixed_precision), the scaled float16 gradients given, the scaler's check, then the optimizer's step."""
    model = gn.nn.Sequential(gn.nn.Linear(*weights[0].shape, rng=0))
    model.load_state_dict({"0.W": weights[0], "0.b": weights[1]})
    model.to(device).mixed_precision()
    params = model.parameters()
    opt, scaler, flag = CASES[case][0](params), gn.LossScaler(**scaler_args).bind(device), DivergenceFlag(device)
    scales = []
    for k, gs in enumerate(grads):
        scale = scaler.scale  # a host read, here only: to build this step's scaled gradients
        scales.append(scale)
        for p, g in zip(params, gs):
            half = (g * np.float32(scale)).astype(np.float16)
            if k in OVERFLOWS:
                half.reshape(-1)[0] = np.inf
            p.grad = device.asarray(half)
        with device:  # as in the Trainer's fit: on the model's own GPU
            flag.check(device.asarray(np.array([0.5], np.float32)), [p.grad for p in params], scaler)
            opt.step(skip=flag.state, scaler=scaler)
    assert gn.to_numpy(flag.state)[0] == 0  # overflows are not divergence
    return scales, opt.steps, scaler, [gn.to_numpy(p.master) for p in params], [gn.to_numpy(p.data) for p in params]


@pytest.mark.parametrize("case", CASES)
def test_scale_skipped_steps_and_weights_follow_torchs_gradscaler(case, rng):
    torch = pytest.importorskip("torch")
    weights = [rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    grads = true_gradients(rng, [w.shape for w in weights])
    args = dict(init_scale=2.0 ** 14, growth_interval=4)
    scales, steps, scaler, masters, copies = gpunn_run(gn.device("cpu"), case, weights, grads, args)

    params = [torch.nn.Parameter(torch.tensor(w)) for w in weights]
    opt = CASES[case][1](torch, params)
    ts = torch.amp.GradScaler("cpu", init_scale=2.0 ** 14, growth_interval=4)  # factors 2 and 1/2, as gpunn's
    torch_scales = []
    for k, gs in enumerate(grads):
        ts.scale(torch.ones(()))  # GradScaler makes its scale at the first scale() of a loss
        scale = ts.get_scale()
        torch_scales.append(scale)
        for p, g in zip(params, gs):
            half = (g * np.float32(scale)).astype(np.float16)  # the same float16 gradients gpunn's backward makes
            if k in OVERFLOWS:
                half.reshape(-1)[0] = np.inf
            p.grad = torch.tensor(half.astype(np.float32))
        ts.step(opt)
        ts.update()
    assert scales == torch_scales
    assert scaler.scale == ts.get_scale()
    assert scaler.state_dict()["growth_tracker"] == ts._get_growth_tracker()
    assert steps == STEPS - len(OVERFLOWS) and scaler.skipped_steps == len(OVERFLOWS)
    if case == "adam":
        assert all(int(opt.state[p]["step"]) == steps for p in params)
    for ours, theirs in zip(masters, params):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    for copy, master in zip(copies, masters):
        np.testing.assert_array_equal(copy, master.astype(np.float16))


@pytest.mark.parametrize("case", ["momentum", "adam"])
def test_the_gpu_takes_the_steps_the_cpu_takes(case, gpu, rng):
    """The same steps on the simulated GPU (the check's and the update's kernels) as on the CPU (their references)."""
    weights = [rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
    grads = true_gradients(rng, [w.shape for w in weights])
    args = dict(init_scale=2.0 ** 14, growth_interval=4)
    cpu, gpu_run = gpunn_run(gn.device("cpu"), case, weights, grads, args), gpunn_run(gpu, case, weights, grads, args)
    assert cpu[:2] == gpu_run[:2]
    assert cpu[2].state_dict() == gpu_run[2].state_dict()
    for a, b in zip(cpu[3] + cpu[4], gpu_run[3] + gpu_run[4]):
        np.testing.assert_allclose(a, b, rtol=8 * np.finfo(np.float32).eps, atol=1e-9)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(init_scale=0.0), ValueError, "init_scale must be in"),
    (dict(init_scale=-4.0), ValueError, "init_scale must be in"),
    (dict(init_scale=float("nan")), ValueError, "init_scale must be in"),
    (dict(init_scale=float("inf")), ValueError, "init_scale must be a positive finite number"),
    (dict(init_scale=1e39), ValueError, r"init_scale must be a positive finite number \(in float32\)"),
    (dict(init_scale=1e-50), ValueError, r"init_scale must be a positive finite number \(in float32\)"),
    (dict(init_scale="65536"), TypeError, "init_scale must be a real number"),
    (dict(init_scale=True), TypeError, "init_scale must be a real number"),
    (dict(growth_factor=1.0), ValueError, "growth_factor must be in"),
    (dict(growth_factor=1e39), ValueError, "growth_factor must be finite in float32"),
    (dict(backoff_factor=1.0), ValueError, "backoff_factor must be in"),
    (dict(backoff_factor=0.0), ValueError, "backoff_factor must be in"),
    (dict(growth_interval=0), ValueError, "growth_interval must be >= 1"),
    (dict(growth_interval=2.5), TypeError, "growth_interval must be an integer"),
    (dict(growth_interval=2 ** 25), ValueError, "growth_interval must be at most 2"),
    (dict(max_consecutive_overflows=0), ValueError, "max_consecutive_overflows must be >= 1"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        gn.LossScaler(**kwargs)


def test_the_state_round_trips_and_a_bad_one_changes_nothing(gpu):
    scaler = gn.LossScaler(init_scale=512.0).bind(gpu)
    assert scaler.scale == 512.0 and scaler.skipped_steps == 0
    saved = {"scale": 2.0 ** -3, "growth_tracker": 17, "overflows_in_a_row": 2, "skipped_steps": 9}
    scaler.load_state_dict(saved)
    sd = scaler.state_dict()
    assert {k: sd[k] for k in saved} == saved and sd["hyperparameters"]["init_scale"] == 512.0
    for bad, match in (({**saved, "scale": 0.0}, "scale must be in"), ({"scale": 1.0}, "not a loss scaler's"),
                       ({**saved, "growth_tracker": -1}, "growth_tracker must be >= 0"),
                       ({**saved, "scale": float("inf")}, "scale must be a positive finite number")):
        with pytest.raises(ValueError, match=match):
            scaler.load_state_dict(bad)
        assert scaler.state_dict() == sd
    restored = gn.LossScaler().load_state_dict(saved).bind(gpu)  # loaded before it has a device
    assert restored.scale == 2.0 ** -3
