"""``foreach=`` and ``fused=`` as PyTorch takes them: every optimizer but LBFGS accepts
``foreach``; SGD, Adam, AdamW and Adagrad accept ``fused``, and ``fused=True`` runs each
step as one compiled update (optimizer._fused_step) with the values of the eager loop."""
import inspect

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from compile_step_testing import CLASSES, MODELS, assert_same_training, first_config, make_step

optim = tracegrad.optim
FUSED = ["SGD", "Adam", "AdamW", "Adagrad"]


def test_signatures_take_foreach_and_fused_where_pytorch_does():
    for name in CLASSES + ["LBFGS"]:
        params = inspect.signature(getattr(optim, name)).parameters
        assert ("foreach" in params) == (name != "LBFGS"), name
        assert ("fused" in params) == (name in FUSED), name


def _train(name, kw, steps=12, lr_change_at=6):
    build, data = MODELS["mlp"]
    model = build()
    opt = getattr(optim, name)(model.parameters(), **kw)
    step = make_step(model, opt, clip=0.5)
    for i in range(steps):
        step(*data[i % len(data)])
        if i == lr_change_at:
            opt.param_groups[0]["lr"] *= 0.5
    return model, opt


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("name", CLASSES)
def test_foreach_is_accepted_and_changes_no_value(name, foreach):
    kw = first_config(name)
    model_d, opt_d = _train(name, kw)
    model_f, opt_f = _train(name, dict(kw, foreach=foreach))
    assert opt_f.param_groups[0]["foreach"] is foreach
    assert_same_training(model_d, opt_d, model_f, opt_f, tol=1e-12)


FUSED_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=1e-2, amsgrad=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name, kw", FUSED_CONFIGS,
                         ids=[f"{n}-{'-'.join(k for k in kw if k != 'lr')}"
                              for n, kw in FUSED_CONFIGS])
def test_fused_step_equals_the_eager_loop(name, kw):
    model_l, opt_l = _train(name, kw, steps=20)
    model_f, opt_f = _train(name, dict(kw, fused=True), steps=20)
    assert_same_training(model_l, opt_l, model_f, opt_f, tol=1e-5)
    (program,) = opt_f._fused_programs.values()
    info = program.cache_info()
    assert info.misses <= 2 and info.hits == 20 - info.misses   # the lr change replays


def test_fused_and_unfused_groups_in_one_optimizer():
    """Each group keeps its own choice; the fused groups' update is one program."""
    build, data = MODELS["mlp"]
    models = build(), build()
    opts = []
    for m, fused in zip(models, (None, True)):
        first, second = list(m.parameters())[:2], list(m.parameters())[2:]
        opts.append(optim.Adam([{"params": first, "fused": fused},
                                {"params": second, "lr": 5e-3}], lr=1e-2))
    steps = [make_step(m, o) for m, o in zip(models, opts)]
    for i in range(8):
        for step in steps:
            step(*data[i % len(data)])
    assert_same_training(models[0], opts[0], models[1], opts[1], tol=1e-5)
    assert len(opts[1]._fused_programs) == 1


def test_fused_step_skips_parameters_without_a_gradient():
    w1 = tracegrad.tensor([1.0, 2.0], requires_grad=True)
    w2 = tracegrad.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w1, w2], lr=0.5, fused=True)
    w1.grad = tracegrad.tensor([1.0, -1.0])
    opt.step()
    assert w1.tolist() == [0.5, 2.5] and w2.tolist() == [3.0]
    w2.grad = tracegrad.tensor([2.0])
    opt.step()
    assert w1.tolist() == [0.0, 3.0] and w2.tolist() == [2.0]


@pytest.mark.parametrize("name", FUSED)
def test_fused_with_foreach_or_differentiable_raises_as_pytorch_does(name):
    w = [tracegrad.zeros(2, requires_grad=True)]
    cls = getattr(optim, name)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        cls(w, fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        cls(w, fused=True, differentiable=True)
    cls(w, fused=False, foreach=True)   # only both True conflict


@pytest.mark.parametrize("name", sorted(set(CLASSES) - set(FUSED)))
def test_fused_is_refused_where_pytorch_has_no_fused_implementation(name):
    with pytest.raises(TypeError, match="fused"):
        getattr(optim, name)([tracegrad.zeros(2, requires_grad=True)], fused=True)


def test_adam_with_decoupled_weight_decay_is_adamw():
    model_a, opt_a = _train("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True))
    model_w, opt_w = _train("AdamW", dict(lr=1e-2, weight_decay=0.1))
    assert_same_training(model_a, opt_a, model_w, opt_w, tol=1e-12)
    assert opt_w.param_groups[0]["decoupled_weight_decay"] is True


def test_adam_decoupled_weight_decay_matches_pytorch():
    torch = pytest.importorskip("torch")
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    grads = [np.array([0.3, -0.1, 0.2], np.float32) * (k + 1) for k in range(5)]
    ours = tracegrad.tensor(w0, requires_grad=True)
    theirs = torch.tensor(w0, requires_grad=True)
    kw = dict(lr=0.1, weight_decay=0.2, decoupled_weight_decay=True)
    opt_o, opt_t = optim.Adam([ours], **kw), torch.optim.Adam([theirs], **kw)
    for g in grads:
        ours.grad, theirs.grad = tracegrad.tensor(g), torch.tensor(g)
        opt_o.step()
        opt_t.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5)


def test_state_dict_saved_before_decoupled_weight_decay_existed_still_loads():
    model = nn.Linear(3, 2)
    opt = optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        del group["decoupled_weight_decay"]
    opt.load_state_dict(saved)
    before = model.weight.detach().numpy().copy()
    model.weight.grad = tracegrad.zeros(2, 3)
    model.bias.grad = tracegrad.zeros(2)
    opt.step()
    # a zero gradient leaves only AdamW's decay: w * (1 - lr * weight_decay)
    np.testing.assert_allclose(model.weight.detach().numpy(), before * 0.95, rtol=1e-6)


@pytest.mark.parametrize("name", CLASSES)
def test_differentiable_true_is_refused_naming_the_optimizer(name):
    with pytest.raises(TypeError, match=f"{name}\\(differentiable=True\\).*cannot be differ"):
        getattr(optim, name)([tracegrad.zeros(2, requires_grad=True)], differentiable=True)
    getattr(optim, name)([tracegrad.zeros(2, requires_grad=True)], differentiable=False)
