"""A compiled training step with every optimizer: what must retrace does (a parameter
frozen or added, a gradient replaced outside the step), what cannot be compiled falls back
naming the line (LBFGS, ``.item()`` mid-step), and NaN/inf propagate exactly as eager."""
import warnings

import numpy as np
import pytest

import tracegrad
import tracegrad.nn.functional as F
from compile_step_testing import CLASSES, Pair, assert_same_training, first_config, make_step
from tracegrad.compiler.errors import TraceError

optim = tracegrad.optim


@pytest.mark.parametrize("name", CLASSES)
def test_freezing_and_unfreezing_a_parameter_retraces_and_trains_as_eager(name):
    pair = Pair("mlp", name, first_config(name))
    pair.run(3)
    for model in pair.models:
        model[0].weight.requires_grad_(False)
    pair.run(3, every_step=True)   # set_to_none zero_grad: no .grad, no update, as eagerly
    for model in pair.models:
        model[0].weight.requires_grad_(True)
    info = pair.run(3, every_step=True)
    assert info.misses >= 4


@pytest.mark.parametrize("name", ["Adam", "NAdam", "Rprop", "ASGD"])
def test_a_parameter_appended_to_a_group_retraces_and_trains_as_eager(name):
    pair = Pair("mlp", name, first_config(name), select=lambda m: list(m.parameters())[:2])
    pair.run(3)
    for model, opt in zip(pair.models, pair.opts):
        opt.param_groups[0]["params"].append(model[2].weight)
    before = pair.models[1][2].weight.detach().numpy().copy()
    info = pair.run(3, every_step=True)
    assert info.misses == 3   # one retrace, which makes the new parameter's state
    assert not np.array_equal(before, pair.models[1][2].weight.detach().numpy())


@pytest.mark.parametrize("name", CLASSES)
def test_a_group_added_after_the_first_steps_trains_as_eager(name):
    """add_param_group after construction: the new parameters' state is made by the
    traced step (Adagrad made it with plain tensors the trace never wrote back: its sum
    and step stayed 0 and the update was wrong)."""
    pair = Pair("mlp", name, first_config(name), select=lambda m: list(m.parameters())[:2])
    pair.run(2)
    for model, opt in zip(pair.models, pair.opts):
        opt.add_param_group({"params": list(model.parameters())[2:]})
    pair.run(4, every_step=True)
    assert all(len(pair.opts[1].state[p]) > 0 for p in pair.models[1].parameters()) \
        or name == "SGD"


@pytest.mark.parametrize("name", CLASSES)
def test_compiled_step_alone_reads_the_gradient_of_this_step(name):
    """backward() eagerly, then a compiled opt.step(): zero_grad() makes a new .grad tensor
    each step, which the program must read (it once replayed the first step's tensor)."""
    weights = []
    for compiled in (False, True):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Linear(5, 3)
        opt = getattr(optim, name)(model.parameters(), **first_config(name))
        step = tracegrad.compile(opt.step, fullgraph=True) if compiled else opt.step
        rng = np.random.default_rng(0)
        for _ in range(6):
            opt.zero_grad()
            x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
            model(x).pow(2).mean().backward()
            step()
        weights.append(model.weight.detach().numpy().copy())
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-5, atol=1e-7)


def test_lbfgs_in_a_compiled_step_falls_back_naming_itself_or_raises_with_fullgraph():
    def run(compile_with):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Linear(3, 1)
        opt = optim.LBFGS(model.parameters(), max_iter=5)
        x, y = tracegrad.randn(8, 3), tracegrad.randn(8, 1)

        def step(x, y):
            def closure():
                opt.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                return loss
            return opt.step(closure)
        f = compile_with(step) if compile_with else step
        for _ in range(3):
            f(x, y)
        return model.weight.detach().numpy().copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = run(tracegrad.compile)
    messages = [str(w.message) for w in caught if "compile" in str(w.message)]
    assert len(messages) == 1, messages
    assert "LBFGS.step(closure) cannot be compiled" in messages[0]
    assert "test_compile_step_optimizers_retrace.py" in messages[0]   # the caller's line
    np.testing.assert_array_equal(compiled, run(None))
    with pytest.raises(TraceError, match="LBFGS.*fullgraph"):
        run(lambda f: tracegrad.compile(f, fullgraph=True))


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Rprop", "ASGD", "Adadelta"])
def test_item_after_the_update_falls_back_leaving_no_traced_state(name):
    """The trace made the optimizer's state before .item() stopped it; the eager fallback
    must start from no state, as eager mode does (NAdam's mu_product, ASGD's eta...)."""
    def run(compiled):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Linear(4, 2)
        opt = getattr(optim, name)(model.parameters(), **first_config(name))

        def step(x, y):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
            return loss
        f = tracegrad.compile(step) if compiled else step
        x, y = tracegrad.randn(8, 4), tracegrad.randn(8, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):
                f(x, y)
        return model.weight.detach().numpy().copy(), {k: v.numpy().copy() for k, v in
                                                       opt.state[model.weight].items()}
    (wc, sc), (we, se) = run(True), run(False)
    np.testing.assert_array_equal(wc, we)
    assert sc.keys() == se.keys()
    for k in se:
        np.testing.assert_array_equal(sc[k], se[k], err_msg=k)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("name", CLASSES)
def test_nan_or_inf_mid_training_propagates_exactly_as_in_eager(name, bad):
    """One input element is NaN or inf at the fourth step: whatever eager mode makes of
    it (NaN parameters, inf moments, a skipped Rprop step) the compiled step makes too."""
    pair = Pair("mlp", name, first_config(name))
    x, y = pair.data[3]
    poisoned = x.numpy().copy()
    poisoned[2, 5] = bad
    pair.data = list(pair.data)
    pair.data[3] = (tracegrad.from_numpy(poisoned), y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(6):
            x, y = pair.data[i % 5]
            pair.eager(x, y)
            pair.compiled(x, y)
    assert not [w for w in caught if "compile" in str(w.message)]
    (me, mc), (oe, oc) = pair.models, pair.opts
    touched = False
    for a, b in zip(me.parameters(), mc.parameters()):
        arrays = [(a.detach().numpy(), b.detach().numpy()), (a.grad.numpy(), b.grad.numpy())]
        arrays += [(oe.state[a][k].numpy(), oc.state[b][k].numpy()) for k in oe.state[a]]
        for e, c in arrays:
            touched = touched or not np.isfinite(e).all()
            np.testing.assert_array_equal(np.isnan(c), np.isnan(e))
            np.testing.assert_array_equal(np.isinf(c), np.isinf(e))
            finite = np.isfinite(e)
            np.testing.assert_allclose(c[finite], e[finite], rtol=1e-4, atol=1e-6)
    # the bad value reached the parameters or the state; but as torch.sign(NaN) = 0, a NaN
    # gradient (inf input: inf - inf) moves no Rprop weight and the next step forgets it
    assert touched or name == "Rprop"


@pytest.mark.parametrize("name", ["SGD", "Adam", "Rprop"])
def test_compiled_clip_and_step_after_an_eager_backward_read_this_steps_gradient(name):
    """clip_grad_norm_ reads .grad first, writes it in place, and the step reads the
    clipped value: the program once replayed the first call's gradient tensor for ever
    (NOTE (gradient reads) in compiler/tracer.py)."""
    results = []
    for compiled in (False, True):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Linear(5, 3)
        opt = getattr(optim, name)(model.parameters(), **first_config(name))

        def update():
            tracegrad.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
        f = tracegrad.compile(update, fullgraph=True) if compiled else update
        rng = np.random.default_rng(0)
        for _ in range(5):
            opt.zero_grad()
            x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
            model(x).pow(2).mean().backward()
            f()
        results.append((model.weight.detach().numpy().copy(), model.weight.grad.numpy().copy()))
    (we, ge), (wc, gc) = results
    np.testing.assert_allclose(wc, we, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gc, ge, rtol=1e-5, atol=1e-7)


def test_a_gradient_kept_across_calls_is_not_retraced_for():
    """zero_grad(set_to_none=False) keeps each .grad tensor: the guard holds, one trace
    serves every call after the first two."""
    tracegrad.manual_seed(0)
    model = tracegrad.nn.Linear(5, 3)
    opt = optim.SGD(model.parameters(), lr=0.1)

    def update():
        tracegrad.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
    f = tracegrad.compile(update, fullgraph=True)
    x = tracegrad.randn(4, 5)
    for _ in range(6):
        opt.zero_grad(set_to_none=False)
        model(x).pow(2).mean().backward()
        f()
    assert f.cache_info().misses == 1 and f.cache_info().hits == 5


class Momentum(optim.Optimizer):
    """A PyTorch-style optimizer of a user: its own step(), options read as Python
    numbers, state made lazily at the first step."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @tracegrad.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "buf" not in state:
                    state["buf"] = tracegrad.zeros_like(p)
                buf = state["buf"]
                buf.mul_(group["momentum"]).add_(p.grad)
                p.add_(buf, alpha=-group["lr"])


def _custom_pair():
    pair = Pair("mlp", "SGD", dict(lr=0.1))
    pair.opts = [Momentum(m.parameters()) for m in pair.models]
    pair.eager = make_step(pair.models[0], pair.opts[0])
    return pair, make_step(pair.models[1], pair.opts[1])


def test_a_custom_optimizer_that_makes_state_in_the_step_falls_back_and_trains_as_eager():
    """Its state made inside the trace would never be written back (momentum restarted
    from zero at every call, silently); the trace stops naming it instead."""
    pair, step = _custom_pair()
    pair.compiled = tracegrad.compile(step)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(6):
            pair.eager(*pair.data[i % 5])
            pair.compiled(*pair.data[i % 5])
    messages = [str(w.message) for w in caught if "compile" in str(w.message)]
    assert len(messages) == 1 and "Momentum.step() made its state 'buf'" in messages[0]
    assert_same_training(pair.models[0], pair.opts[0], pair.models[1], pair.opts[1], tol=1e-6)
    with pytest.raises(TraceError, match="Momentum.step\\(\\) made its state"):
        _custom_pair_compiled_fullgraph()


def _custom_pair_compiled_fullgraph():
    pair, step = _custom_pair()
    tracegrad.compile(step, fullgraph=True)(*pair.data[0])


def test_a_custom_optimizer_with_its_state_compiles_and_retraces_when_an_option_changes():
    """After one eager step the state exists: the step compiles (one program), and lr,
    a Python number baked into it, retraces when a scheduler changes it."""
    pair, step = _custom_pair()
    pair.eager(*pair.data[0])
    step(*pair.data[0])          # the compiled side's first step, eagerly: makes the state
    pair.compiled = tracegrad.compile(step, fullgraph=True)
    pair.scheds = [optim.lr_scheduler.StepLR(o, 4, gamma=0.5) for o in pair.opts]
    info = pair.run(12, every_step=True)
    assert info.misses == 3 and info.hits == 9   # lr changed twice (after steps 4 and 8)


def test_copy_of_an_outside_tensor_in_a_compiled_function_keeps_its_own_storage():
    """``dst.copy_(src)`` with src of dst's shape and dtype made dst share src's storage
    for good, and recorded no write: a later change of src showed in dst without a call,
    and a change of dst wrote into src."""
    dst, src = tracegrad.zeros(2), tracegrad.tensor([1.0, 2.0])

    def copy(x):
        dst.copy_(src)
        return x + 1
    f = tracegrad.compile(copy, fullgraph=True)
    f(tracegrad.ones(1))
    assert not np.shares_memory(dst.numpy(), src.numpy())
    src.mul_(3)
    assert dst.tolist() == [1.0, 2.0]   # no call yet: dst keeps the copy it has
    f(tracegrad.ones(1))
    assert dst.tolist() == [3.0, 6.0]   # the compiled code copies at every call
    dst.fill_(-1.0)
    assert src.tolist() == [3.0, 6.0]


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_buffer_does_not_follow_a_gradient_kept_across_steps(nesterov):
    """A compiled opt.step() after an eager backward with zero_grad(set_to_none=False):
    the first step's buffer was the gradient tensor's storage, so zeroing the gradient
    zeroed the momentum (0.05 off eager after 2 steps)."""
    weights = []
    for compiled in (False, True):
        tracegrad.manual_seed(0)
        model = tracegrad.nn.Linear(5, 3)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=nesterov)
        step = tracegrad.compile(opt.step, fullgraph=True) if compiled else opt.step
        rng = np.random.default_rng(0)
        for _ in range(5):
            opt.zero_grad(set_to_none=False)
            x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
            model(x).pow(2).mean().backward()
            step()
        weights.append(model.weight.detach().numpy().copy())
        buf = opt.state[model.weight]["momentum_buffer"].numpy()
        assert not np.shares_memory(buf, model.weight.grad.numpy())
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-5, atol=1e-7)


def test_plain_sgd_in_a_compiled_step_keeps_no_state_as_eager_and_pytorch():
    pair = Pair("mlp", "SGD", dict(lr=0.1))
    pair.run(3)
    assert pair.opts[1].state_dict()["state"] == {} == pair.opts[0].state_dict()["state"]
