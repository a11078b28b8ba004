"""Every optimizer configuration of compile_step_testing against PyTorch itself (skipped
where torch is not installed, as in CI): 20 steps from the same weights and gradients,
eager and as a compiled ``opt.step()``; the weights, and the state dict (keys, dtypes,
values, group options) a user would save or load in its place.

The gradients are written into the same ``.grad`` tensors at every step (as
``zero_grad(set_to_none=False)`` and ``backward()`` do), which the compiled step reads as
captured inputs; edge cases: ``lr`` a 0-d tensor, weight decay switched between zero and
non-zero by hand, a parameter without a gradient at some steps."""
import warnings

import numpy as np
import pytest

import tracegrad
from compile_step_testing import CONFIGS, config_id, relative

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
WEIGHTS = [RNG.standard_normal((3, 4)).astype(np.float32),
           RNG.standard_normal(5).astype(np.float32)]
GRADS = [[RNG.standard_normal(w.shape).astype(np.float32) for w in WEIGHTS]
         for _ in range(20)]
# the second parameter has no gradient at steps 3, 4 and 9, the first none at step 0
WITH_HOLES = [[None if (j, i) in {(1, 3), (1, 4), (1, 9), (0, 0)} else g
               for j, g in enumerate(gs)] for i, gs in enumerate(GRADS)]


def _switch_weight_decay(i, opt):
    opt.param_groups[0]["weight_decay"] = 0.0 if i % 4 < 2 else 0.05


def _train_tracegrad(name, kw, compiled, grads, edit):
    params = [tracegrad.tensor(w, requires_grad=True) for w in WEIGHTS]
    opt = getattr(tracegrad.optim, name)(params, **kw)
    step = tracegrad.compile(opt.step, fullgraph=True) if compiled else opt.step
    for i, gs in enumerate(grads):
        for p, g in zip(params, gs):
            if g is None or p.grad is None:
                p.grad = None if g is None else tracegrad.tensor(g)
            else:
                with tracegrad.no_grad():
                    p.grad.copy_(tracegrad.tensor(g))
        if edit:
            edit(i, opt)
        step()
    return params, opt


def _train_torch(name, kw, grads, edit):
    params = [torch.tensor(w, requires_grad=True) for w in WEIGHTS]
    opt = getattr(torch.optim, name)(params, **kw)
    for i, gs in enumerate(grads):
        for p, g in zip(params, gs):
            p.grad = None if g is None else torch.tensor(g)
        if edit:
            edit(i, opt)
        opt.step()
    return params, opt


def _plain(v):
    if isinstance(v, (torch.Tensor, tracegrad.Tensor)):
        return np.asarray(v.detach().numpy())
    return v


def _assert_same_state_dict(ours: dict, theirs: dict) -> None:
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        assert ours["state"][index].keys() == state.keys(), index
        for key, value in state.items():
            a, b = _plain(ours["state"][index][key]), _plain(value)
            assert (a.dtype, a.shape) == (b.dtype, b.shape), (index, key)
            assert relative(a, b) < 1e-5, (index, key)
    for mine, group in zip(ours["param_groups"], theirs["param_groups"]):
        assert mine.keys() == group.keys()
        for key, value in group.items():
            if isinstance(value, float):
                assert _plain(mine[key]) == pytest.approx(value, rel=1e-12), key
            else:
                assert mine[key] == value, key


# torch refuses capturable=True for CPU tensors; tracegrad accepts and ignores it
CONFIGS = [(name, {k: v for k, v in kw.items() if k != "capturable"}) for name, kw in CONFIGS]
CASES = [pytest.param(name, kw, None, GRADS, id=config_id((name, kw)))
         for name, kw in CONFIGS]
CASES += [pytest.param(name, kw, _switch_weight_decay, GRADS,
                       id=config_id((name, kw)) + "-weight_decay_switched")
          for name, kw in CONFIGS if "weight_decay" in kw]
CASES += [pytest.param(name, kw, None, WITH_HOLES, id=config_id((name, kw)) + "-no_grad_at_times")
          for name, kw in CONFIGS if kw is next(k for n, k in CONFIGS if n == name)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name, kw, edit, grads", CASES)
def test_twenty_steps_equal_pytorch(name, kw, edit, grads, compiled):
    theirs, opt_t = _train_torch(name, kw, grads, edit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no fallback to eager
        ours, opt_o = _train_tracegrad(name, kw, compiled, grads, edit)
    for a, b in zip(ours, theirs):
        assert relative(a.detach().numpy(), b.detach().numpy()) < 1e-5
    _assert_same_state_dict(opt_o.state_dict(), opt_t.state_dict())


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "RAdam", "ASGD"])
def test_lr_given_as_a_tensor_equals_pytorch(name, compiled):
    kw = next(k for n, k in CONFIGS if n == name and k.get("weight_decay", 0) == 0)

    def tensor_lr(module):
        def edit(i, opt):
            if i == 0:   # torch keeps a 0-d tensor lr as given; so do we
                opt.param_groups[0]["lr"] = module.tensor(kw["lr"])
            elif i == 10:
                opt.param_groups[0]["lr"].mul_(0.5)
        return edit
    theirs, _ = _train_torch(name, kw, GRADS, tensor_lr(torch))
    ours, _ = _train_tracegrad(name, kw, compiled, GRADS, tensor_lr(tracegrad))
    for a, b in zip(ours, theirs):
        assert relative(a.detach().numpy(), b.detach().numpy()) < 1e-5


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name, kw", CONFIGS, ids=[config_id(c) for c in CONFIGS])
def test_training_continues_from_a_pytorch_state_dict(name, kw, compiled):
    theirs, opt_t = _train_torch(name, kw, GRADS[:8], None)
    saved = opt_t.state_dict()
    loaded = {"state": {i: {k: tracegrad.from_numpy(_plain(v).copy()) for k, v in s.items()}
                        for i, s in saved["state"].items()},
              "param_groups": saved["param_groups"]}
    ours = [tracegrad.tensor(p.detach().numpy(), requires_grad=True) for p in theirs]
    opt_o = getattr(tracegrad.optim, name)(ours, **kw)
    opt_o.load_state_dict(loaded)
    step = tracegrad.compile(opt_o.step, fullgraph=True) if compiled else opt_o.step
    for gs in GRADS[8:]:
        for p, q, g in zip(ours, theirs, gs):
            p.grad, q.grad = tracegrad.tensor(g), torch.tensor(g)
        step()
        opt_t.step()
    for a, b in zip(ours, theirs):
        assert relative(a.detach().numpy(), b.detach().numpy()) < 1e-5
