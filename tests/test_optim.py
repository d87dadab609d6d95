import math

import numpy as np
import pytest

import gpunn as gn
from gpunn.nn import Parameter

pytestmark = pytest.mark.filterwarnings("ignore:overflow")

STEPS = 4


def make_params(device, rng):
    """A weight (decayed) and a bias (not decayed), float64, on ``device``."""
    w = Parameter(device.asarray(rng.standard_normal((4, 3))))
    b = Parameter(device.asarray(rng.standard_normal(3)), decay=False)
    return [w, b]


def reference_run(rule, params0, grads, decays):
    """Apply ``rule(w, g, state, t)`` by hand, from plain NumPy copies."""
    ws = [p.copy() for p in params0]
    states = [dict() for _ in ws]
    for t, gs in enumerate(grads, start=1):
        for i, (g, decay) in enumerate(zip(gs, decays)):
            ws[i] = rule(ws[i], g, states[i], t, decay)
    return ws


def run(opt, params, grads):
    for gs in grads:
        opt.zero_grad()
        for p, g in zip(params, gs):
            p.accumulate(gn.device_of(p.data).asarray(g))
        opt.step()
    return [gn.to_numpy(p.data) for p in params]


def sgd_rule(lr, mu=0.0, nesterov=False, wd=0.0):
    def rule(w, g, s, t, decay):
        g = g + (wd * w if decay else 0)
        if mu == 0:
            return w - lr * g
        s["v"] = mu * s.get("v", 0) + g
        return w - lr * (g + mu * s["v"] if nesterov else s["v"])
    return rule


def adagrad_rule(lr, eps=1e-10, wd=0.0):
    def rule(w, g, s, t, decay):
        g = g + (wd * w if decay else 0)
        s["s"] = s.get("s", 0) + g**2
        return w - lr * g / (np.sqrt(s["s"]) + eps)
    return rule


def rmsprop_rule(lr, alpha=0.99, eps=1e-8, wd=0.0):
    def rule(w, g, s, t, decay):
        g = g + (wd * w if decay else 0)
        s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g**2
        return w - lr * g / (np.sqrt(s["v"]) + eps)
    return rule


def adam_rule(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    def rule(w, g, s, t, decay):
        if decay and decoupled:
            w = w - lr * wd * w
        elif decay:
            g = g + wd * w
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g**2
        m_hat, v_hat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return rule


CASES = {
    "sgd": (lambda ps: gn.optim.SGD(ps, lr=0.1), sgd_rule(0.1)),
    "sgd-wd": (lambda ps: gn.optim.SGD(ps, lr=0.1, weight_decay=0.3), sgd_rule(0.1, wd=0.3)),
    "momentum": (lambda ps: gn.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                 sgd_rule(0.05, 0.9, wd=0.01)),
    "nesterov": (lambda ps: gn.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True), sgd_rule(0.05, 0.8, True)),
    "adagrad": (lambda ps: gn.optim.Adagrad(ps, lr=0.2, weight_decay=0.1), adagrad_rule(0.2, wd=0.1)),
    "rmsprop": (lambda ps: gn.optim.RMSProp(ps, lr=0.01, alpha=0.9, weight_decay=0.05),
                rmsprop_rule(0.01, 0.9, wd=0.05)),
    "adam": (lambda ps: gn.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
             adam_rule(0.01, 0.8, 0.99, wd=0.1)),
    "adamw": (lambda ps: gn.optim.AdamW(ps, lr=0.01, weight_decay=0.1), adam_rule(0.01, wd=0.1, decoupled=True)),
}


@pytest.mark.parametrize("name", CASES)
def test_update_rules_match_their_definitions(name, device, rng):
    make, rule = CASES[name]
    params = make_params(device, rng)
    start = [gn.to_numpy(p.data).copy() for p in params]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(STEPS)]
    got = run(make(params), params, grads)
    expected = reference_run(rule, start, grads, decays=[True, False])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_decay_biases_extends_weight_decay_to_biases(rng):
    cpu = gn.device("cpu")
    params = make_params(cpu, rng)
    start = [p.data.copy() for p in params]
    grads = [[rng.standard_normal(p.shape) for p in params]]
    got = run(gn.optim.SGD(params, lr=0.1, weight_decay=0.5, decay_biases=True), params, grads)
    expected = reference_run(sgd_rule(0.1, wd=0.5), start, grads, decays=[True, True])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-12)


def test_parameters_without_gradient_are_left_alone(rng):
    params = make_params(gn.device("cpu"), rng)
    before = params[1].data.copy()
    params[0].accumulate(rng.standard_normal(params[0].shape))
    gn.optim.Adam(params).step()
    np.testing.assert_array_equal(params[1].data, before)


def test_torch_agrees_on_every_rule(rng):
    torch = pytest.importorskip("torch")
    pairs = {
        "nesterov": (lambda ps: gn.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1,
                                             decay_biases=True),
                     lambda ts: torch.optim.SGD(ts, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
        "adagrad": (lambda ps: gn.optim.Adagrad(ps, lr=0.2), lambda ts: torch.optim.Adagrad(ts, lr=0.2)),
        "rmsprop": (lambda ps: gn.optim.RMSProp(ps, lr=0.01), lambda ts: torch.optim.RMSprop(ts, lr=0.01)),
        "adam": (lambda ps: gn.optim.Adam(ps, lr=0.01, weight_decay=0.1, decay_biases=True),
                 lambda ts: torch.optim.Adam(ts, lr=0.01, weight_decay=0.1)),
        "adamw": (lambda ps: gn.optim.AdamW(ps, lr=0.01, weight_decay=0.1, decay_biases=True),
                  lambda ts: torch.optim.AdamW(ts, lr=0.01, weight_decay=0.1)),
    }
    for name, (ours, theirs) in pairs.items():
        params = make_params(gn.device("cpu"), rng)
        tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
        opt, topt = ours(params), theirs(tparams)
        for _ in range(STEPS):
            grads = [rng.standard_normal(p.shape) for p in params]
            run(opt, params, [grads])
            for t, g in zip(tparams, grads):
                t.grad = torch.tensor(g)
            topt.step()
        for p, t in zip(params, tparams):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, err_msg=name)


# ---------------------------------------------------------------- state, schedules, search


def test_state_dict_resumes_the_same_trajectory(rng):
    params = make_params(gn.device("cpu"), rng)
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(6)]
    opt = gn.optim.Adam(params, lr=0.01)
    run(opt, params, grads[:3])
    saved_params = [p.data.copy() for p in params]
    saved = opt.state_dict()
    straight = run(opt, params, grads[3:])

    fresh = [Parameter(w.copy(), decay=p.decay) for w, p in zip(saved_params, params)]
    resumed_opt = gn.optim.Adam(fresh, lr=0.5).load_state_dict(saved)
    assert resumed_opt.lr == 0.01 and resumed_opt.steps == 3
    for a, b in zip(run(resumed_opt, fresh, grads[3:]), straight):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_refuses_foreign_state_and_changes_nothing(rng):
    params = make_params(gn.device("cpu"), rng)
    opt = gn.optim.SGD(params, lr=0.1, momentum=0.9)
    params[0].accumulate(rng.standard_normal(params[0].shape))
    opt.step()
    before = opt.state_dict()
    with pytest.raises(ValueError, match="state dict is for Adam, this optimizer is SGD"):
        opt.load_state_dict(gn.optim.Adam(params).state_dict())
    bad = opt.state_dict()
    bad["state"][0]["velocity"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"state\[0\]\['velocity'\] has shape \(2, 2\)"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    np.testing.assert_array_equal(after["state"][0]["velocity"], before["state"][0]["velocity"])
    assert after["steps"] == before["steps"]


def test_failed_step_changes_no_parameter_and_no_state(rng):
    params = make_params(gn.device("cpu"), rng)
    opt = gn.optim.Adam(params)
    before = [p.data.copy() for p in params]
    params[0].accumulate(rng.standard_normal(params[0].shape))
    params[1].grad = rng.standard_normal(5)  # wrong shape, found after a good one
    with pytest.raises(ValueError, match=r"params\[1\].grad has shape \(5,\), its data \(3,\)"):
        opt.step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)
    assert opt.steps == 0 and opt.state == [{}, {}]


@pytest.mark.parametrize(
    "make,err,match",
    [
        (lambda ps: gn.optim.SGD(ps, lr=0), ValueError, r"lr must be in \(0, inf\), got 0.0"),
        (lambda ps: gn.optim.Adam(ps, lr=-1e-3), ValueError, "lr must be in"),
        (lambda ps: gn.optim.SGD(ps, lr="fast"), TypeError, "lr must be a real number"),
        (lambda ps: gn.optim.SGD(ps, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda ps: gn.optim.SGD(ps, momentum=-0.5), ValueError, "momentum must be in"),
        (lambda ps: gn.optim.SGD(ps, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
        (lambda ps: gn.optim.SGD(ps, weight_decay=-1), ValueError, "weight_decay must be in"),
        (lambda ps: gn.optim.Adam(ps, betas=(0.9,)), TypeError, "betas must be a pair"),
        (lambda ps: gn.optim.Adam(ps, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in"),
        (lambda ps: gn.optim.SGD([]), ValueError, "params is empty"),
        (lambda ps: gn.optim.SGD([np.zeros(3)]), TypeError, r"params\[0\] must be a gpunn.nn.Parameter"),
    ],
)
def test_bad_optimizer_arguments(make, err, match, rng):
    with pytest.raises(err, match=match):
        make(make_params(gn.device("cpu"), rng))


def test_schedules_follow_their_formulas(rng):
    params = make_params(gn.device("cpu"), rng)
    step = gn.optim.StepDecay(gn.optim.SGD(params, lr=1.0), step_size=2, gamma=0.5)
    assert [step.step() for _ in range(5)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    expo = gn.optim.ExponentialDecay(gn.optim.SGD(params, lr=2.0), gamma=0.9)
    assert [expo.step() for _ in range(3)] == pytest.approx([1.8, 1.62, 1.458])
    opt = gn.optim.SGD(params, lr=1.0)
    cos = gn.optim.CosineAnnealing(opt, T_max=4, eta_min=0.1)
    got = [cos.step() for _ in range(6)]
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * min(e, 4) / 4)) / 2 for e in range(1, 7)]
    assert got == pytest.approx(expected) and opt.lr == pytest.approx(0.1)
    resumed = gn.optim.CosineAnnealing(gn.optim.SGD(params, lr=1.0), T_max=4, eta_min=0.1)
    resumed.load_state_dict(gn.optim.CosineAnnealing(gn.optim.SGD(params, lr=1.0), T_max=4).state_dict() | {"epoch": 2})
    assert resumed.optimizer.lr == pytest.approx(0.1 + 0.9 * 0.5)
    with pytest.raises(ValueError, match="gamma must be in"):
        gn.optim.StepDecay(opt, step_size=1, gamma=0)
    with pytest.raises(ValueError, match="step_size must be >= 1"):
        gn.optim.StepDecay(opt, step_size=0)


@pytest.mark.parametrize("cls", [gn.optim.RandomSearch, gn.optim.RandomLocalSearch])
def test_gradient_free_search_never_gets_worse_and_improves(cls, rng):
    X, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    model = gn.nn.Sequential(gn.nn.Linear(4, 3, init=1.0, rng=int(rng.integers(1 << 30))))
    loss = gn.nn.MulticlassHinge()

    def closure():
        return loss.forward(model.forward(X), y)

    start = float(closure())
    search = cls(model.parameters(), scale=0.5 if cls is gn.optim.RandomSearch else 0.1, seed=0)
    history = [search.step(closure) for _ in range(60)]
    assert all(b <= a for a, b in zip(history, history[1:]))
    assert history[-1] < start
    assert float(closure()) == pytest.approx(history[-1])  # the parameters sit at the best point


def test_a_step_updates_every_parameter_in_one_call_and_counts_on_the_device(rng, monkeypatch):
    """One ``update_step`` (one launch on a GPU) per step for all parameters; the count lives beside them and stays
    where a step is skipped."""
    params = [Parameter(rng.standard_normal(shape).astype(np.float32), decay=len(shape) > 1)
              for shape in ((40, 30), (30,), (30, 7), (7,))]
    opt = gn.optim.Adam(params, lr=0.01, weight_decay=0.1)
    calls, real = [], gn.ops.update_step.bindings["cpu"]

    def counting(steps, optimizer, ws, *rest):
        calls.append(len(ws))
        return real(steps, optimizer, ws, *rest)

    monkeypatch.setitem(gn.ops.update_step.bindings, "cpu", counting)
    for t in (1, 2, 3):
        for p in params:
            p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step(skip=np.array([1 if t == 2 else 0], np.int64))
    assert calls == [4, 4, 4]
    assert opt.steps == 2  # the skipped step did not count
    (count,) = opt._counts.values()
    assert count.dtype == np.float32 and count.tolist() == [2.0]
