"""Optimizers against NumPy reference implementations of PyTorch's documented updates."""
import copy

import numpy as np
import pytest

import tracegrad as torch
from tracegrad import optim


# ---- NumPy references (float64), written from PyTorch's documented algorithms ----------
def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    p = p.copy()
    buf = None
    for g in grads(p):
        g = -g if maximize else g
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        yield p


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    p = p.copy()
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    t = 0
    for g in grads(p):
        t += 1
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            vhat = vmax / (1 - b2 ** t)
        else:
            vhat = v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
        yield p


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    p = p.copy()
    s = np.zeros_like(p)
    a = np.zeros_like(p)
    b = np.zeros_like(p)
    for g in grads(p):
        g = -g if maximize else g
        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        if centered:
            a = alpha * a + (1 - alpha) * g
            d = np.sqrt(s - a * a) + eps
        else:
            d = np.sqrt(s) + eps
        if momentum > 0:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d
        yield p


def ref_adagrad(p, grads, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10, maximize=False):
    p = p.copy()
    s = np.full_like(p, initial_accumulator_value)
    t = 0
    for g in grads(p):
        t += 1
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        yield p


REFS = {optim.SGD: ref_sgd, optim.Adam: ref_adam, optim.RMSprop: ref_rmsprop,
        optim.Adagrad: ref_adagrad}

C = np.array([0.5, 1.5, -2.0, 3.0, 0.25, 1.0])
D = np.array([1.0, -0.5, 0.3, 0.0, 2.0, -1.0])
P0 = np.array([1.0, -2.0, 0.5, 0.1, -0.7, 3.0])
STEPS = 6


def run_reference(ref, kwargs):
    out = []
    state = {"p": P0.copy()}

    def grads(_p0):  # the reference passes its start; the gradient reads the latest state
        for _ in range(STEPS):
            g = 2 * C * state["p"] + D
            yield g
    for p in ref(P0, grads, **kwargs):
        state["p"] = p
        out.append(p)
    return out


def run_tracegrad(cls, kwargs, dtype=torch.float64):
    w = torch.tensor(P0, dtype=dtype, requires_grad=True)
    c, d = torch.tensor(C, dtype=dtype), torch.tensor(D, dtype=dtype)
    opt = cls([w], **kwargs)
    out = []
    for _ in range(STEPS):
        opt.zero_grad()
        (c * w * w + d * w).sum().backward()
        opt.step()
        out.append(w.detach().numpy().copy())
    return out


CASES = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, weight_decay=0.1)),
    (optim.SGD, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
    (optim.SGD, dict(lr=0.05, momentum=0.5, maximize=True)),
    (optim.Adam, dict(lr=0.1)),
    (optim.Adam, dict(lr=0.1, betas=(0.8, 0.9), weight_decay=0.1)),
    (optim.Adam, dict(lr=0.1, amsgrad=True, eps=1e-3)),
    (optim.Adam, dict(lr=0.1, maximize=True, weight_decay=0.05)),
    (optim.RMSprop, dict(lr=0.01)),
    (optim.RMSprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.9)),
    (optim.RMSprop, dict(lr=0.01, centered=True, eps=1e-4)),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5, maximize=True)),
    (optim.Adagrad, dict(lr=0.1)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1,
                         initial_accumulator_value=0.5, eps=1e-6)),
    (optim.Adagrad, dict(lr=0.1, maximize=True)),
]


@pytest.mark.parametrize("cls,kwargs", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_matches_reference(cls, kwargs):
    got = run_tracegrad(cls, kwargs)
    want = run_reference(REFS[cls], kwargs)
    for step, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"step {step + 1}")


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_decoupled(amsgrad):
    kwargs = dict(lr=0.1, weight_decay=0.3, amsgrad=amsgrad)
    got = run_tracegrad(optim.AdamW, kwargs)
    want = run_reference(lambda *a, **k: ref_adam(*a, decoupled=True, **k), kwargs)
    np.testing.assert_allclose(np.stack(got), np.stack(want), rtol=1e-12, atol=1e-12)


def test_defaults_match_pytorch():
    w = torch.zeros(2, requires_grad=True)
    assert optim.SGD([w]).defaults["lr"] == 1e-3
    adam = optim.Adam([w]).defaults
    assert (adam["lr"], adam["betas"], adam["eps"], adam["weight_decay"]) == \
        (1e-3, (0.9, 0.999), 1e-8, 0)
    assert optim.AdamW([w]).defaults["weight_decay"] == 1e-2
    rms = optim.RMSprop([w]).defaults
    assert (rms["lr"], rms["alpha"], rms["eps"]) == (1e-2, 0.99, 1e-8)
    ada = optim.Adagrad([w]).defaults
    assert (ada["lr"], ada["eps"], ada["lr_decay"]) == (1e-2, 1e-10, 0)


def test_float32_update_in_place_keeps_identity_and_views():
    w = torch.ones(4, 3, requires_grad=True)
    row = w.detach()[1]
    storage = w._data
    v0 = w._version_number
    opt = optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = torch.ones(4, 3)
    opt.step()
    assert w._data is storage and w.dtype == torch.float32
    assert w._version_number > v0
    np.testing.assert_allclose(row.numpy(), np.full(3, 0.5))
    assert w.requires_grad and w.is_leaf and w.grad_fn is None


def test_step_skips_params_without_grad_and_returns_closure_loss():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (a * 2).sum()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert float(loss) == 4.0
    assert b.tolist() == [1.0, 1.0] and b not in opt.state
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 0.9], rtol=1e-6)


def test_zero_grad():
    w = torch.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    g = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is g and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_param_groups_use_their_own_options():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0, "momentum": 0.5}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.0
    assert opt.param_groups[1]["momentum"] == 0.5
    for _ in range(2):
        a.grad = torch.ones(2)
        b.grad = torch.ones(2)
        opt.step()
    np.testing.assert_allclose(a.detach().numpy(), [0.8, 0.8])
    np.testing.assert_allclose(b.detach().numpy(), [1 - 1 - 1.5] * 2)
    c = torch.ones(1, requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 2.0})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["momentum"] == 0.0


def test_bad_inputs():
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.Adam([w, np.ones(2)])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([w], lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="ordered"):
        optim.SGD({w}, lr=0.1)


@pytest.mark.parametrize("cls,kwargs", [
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (optim.Adam, dict(lr=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=0.1)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01)),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_state_dict_round_trip_continues_identically(cls, kwargs, tmp_path):
    from tracegrad.serialization import load, save
    c = torch.tensor(C, dtype=torch.float32)

    def train(w, opt, n):
        for _ in range(n):
            opt.zero_grad()
            (c * w * w + w).sum().backward()
            opt.step()

    w1 = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
    opt1 = cls([w1], **kwargs)
    train(w1, opt1, 3)
    save({"w": w1.detach(), "opt": opt1.state_dict()}, tmp_path / "ckpt.tg")
    train(w1, opt1, 3)

    ckpt = load(tmp_path / "ckpt.tg")
    w2 = torch.tensor(ckpt["w"].numpy(), requires_grad=True)
    opt2 = cls([w2], lr=123.0)
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    assert opt2.param_groups[0]["params"][0] is w2
    train(w2, opt2, 3)
    np.testing.assert_array_equal(w1.detach().numpy(), w2.detach().numpy())


def test_state_dict_layout_and_independence():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(3, requires_grad=True)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}])
    a.grad, b.grad = torch.ones(2), torch.ones(3)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert set(sd["state"]) == {0, 1}
    assert set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}
    assert float(sd["state"][0]["step"]) == 1.0
    opt2 = optim.Adam([torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)])
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt2.load_state_dict(sd)
    a2, b2 = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    opt3 = optim.Adam([{"params": [a2]}, {"params": [b2]}])
    opt3.load_state_dict(copy.deepcopy(sd))
    opt3.load_state_dict(sd)
    a2.grad, b2.grad = torch.ones(2), torch.ones(3)
    opt3.step()  # must not touch the first optimizer's buffers
    assert float(opt.state[a]["step"]) == 1.0 and float(opt3.state[a2]["step"]) == 2.0
