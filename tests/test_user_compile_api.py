"""``torch.compile``'s spellings that PyTorch users write (``import tracegrad as torch``):
``mode=``, ``backend=``, ``disable=``, ``torch.compiler.reset/disable/is_compiling``,
``torch._dynamo.mark_dynamic`` and ``nn.Module.compile()``; each value compared with eager."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F


def _fn(x):
    return F.softmax(x * 2, dim=-1).sum(0)


def _assert_close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune",
                                  "max-autotune-no-cudagraphs"])
def test_pytorch_modes_compile(mode):
    x = torch.randn(4, 3)
    for compiled in (torch.compile(_fn, mode=mode), torch.compile(mode=mode)(_fn)):
        _assert_close(compiled(x), _fn(x))
        assert compiled.cache_info().misses == 1


def test_unknown_mode_and_mode_with_options_raise_as_pytorch():
    with pytest.raises(RuntimeError, match="Unrecognized mode=fast"):
        torch.compile(_fn, mode="fast")
    with pytest.raises(RuntimeError, match="Either mode or options"):
        torch.compile(_fn, mode="default", options={"max_autotune": True})


@pytest.mark.parametrize("backend, ours", [("inductor", "auto"), ("aot_eager", "eager"),
                                           ("eager", "eager")])
def test_pytorch_backend_names(backend, ours):
    x = torch.randn(4, 3)
    compiled = torch.compile(_fn, backend=backend)
    assert compiled.backend == ours
    _assert_close(compiled(x), _fn(x))


def test_a_dynamo_backend_function_is_refused_by_name():
    with pytest.raises(NotImplementedError, match="backend=.*TorchDynamo backend"):
        torch.compile(_fn, backend=lambda graph_module, example_inputs: graph_module)


def test_disable_true_returns_the_function_itself():
    assert torch.compile(_fn, disable=True) is _fn
    model = torch.nn.Linear(3, 2)
    assert torch.compile(model, disable=True) is model


def test_dynamo_mark_dynamic_serves_new_sizes_without_compiling():
    compiled = torch.compile(_fn)
    x = torch.randn(5, 3)
    torch._dynamo.mark_dynamic(x, 0)
    compiled(x)
    for n in (6, 9, 12):
        y = torch.randn(n, 3)
        _assert_close(compiled(y), _fn(y))
    assert compiled.cache_info().misses == 1


def test_compiler_reset_forgets_every_program():
    compiled = torch.compile(_fn)
    x = torch.randn(4, 3)
    compiled(x)
    compiled(x)
    assert compiled.cache_info().misses == 1
    torch.compiler.reset()
    _assert_close(compiled(x), _fn(x))
    assert compiled.cache_info().misses == 1 and compiled.cache_info().hits == 0
    torch._dynamo.reset()
    compiled(x)
    assert compiled.cache_info().hits == 0


def test_is_compiling_is_true_only_while_tracing():
    seen = []

    def f(x):
        seen.append(torch.compiler.is_compiling())
        return x + 1
    torch.compile(f)(torch.ones(2))
    assert seen == [True] and not torch.compiler.is_compiling()


@torch.compiler.disable
def _host_side_stats(x):
    return float(x.abs().max())


def _scaled(x):
    return x * 2 + _host_side_stats(x)


def test_compiler_disable_runs_eagerly_and_stops_the_trace_with_its_line():
    x = torch.randn(4)
    assert _host_side_stats(x) == float(x.abs().max())
    with pytest.warns(RuntimeWarning, match=r"test_user_compile_api\.py:\d+ .*"
                                            r"_host_side_stats is marked torch\.compiler"):
        result = torch.compile(_scaled)(x)
    _assert_close(result, _scaled(x))
    with pytest.raises(RuntimeError, match="torch.compiler.disable"):
        torch.compile(_scaled, fullgraph=True)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch._dynamo.disable(_fn)(x.reshape(2, 2)).shape == (2,)


def test_module_compile_in_place_keeps_the_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                    torch.nn.Linear(4, 2))
    reference.load_state_dict(model.state_dict())
    assert model.compile() is None
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = torch.randn(5, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        for m, o in ((model, opt), (reference, opt_ref)):
            o.zero_grad()
            m(x).square().sum().backward()
            o.step()
    _assert_close(model(x), reference(x))
    compiled = model._compiled_call_impl
    assert compiled.cache_info().misses == 1 and compiled.cache_info().hits >= 3
    model.eval()
    reference.eval()
    _assert_close(model(x), reference(x))


def test_module_examples_run():
    import doctest

    from tracegrad.compiler import torch_api
    result = doctest.testmod(torch_api)
    assert result.attempted >= 5 and result.failed == 0
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(torch.nn.Module.compile, "Module.compile"):
        runner.run(test)
    assert runner.tries >= 3 and runner.failures == 0


def _clipped_step(x, max_norm=1.0):
    scale = min(1.0, max_norm / 2.0)   # reads the float as a Python number
    return x * scale


def test_a_float_argument_read_as_a_number_is_followed():
    # NOTE (float arguments): min(1.0, max_norm / 2.0) is a guard on the float argument,
    # not a stopped trace: one program per outcome (scale 1.0, or max_norm / 2.0)
    x = torch.randn(3)
    compiled = torch.compile(_clipped_step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (0.5, 1.0, 3.0, 4.0, 0.5, 1.5):
            _assert_close(compiled(x, max_norm=value), _clipped_step(x, max_norm=value))
    assert compiled.cache_info().misses == 2
    static = torch.compile(_clipped_step, static_argnames=("max_norm",))
    for value in (0.5, 1.0, 0.5):
        _assert_close(static(x, max_norm=value), _clipped_step(x, max_norm=value))
    assert static.cache_info().misses == 2


class _WithCompiledBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.block = torch.compile(torch.nn.Linear(3, 3))
        self.head = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.block(x).relu())


def test_a_compiled_block_inside_a_module_is_trained():
    # PyTorch's OptimizedModule is a Module: its parameters belong to the parent
    torch.manual_seed(0)
    model = _WithCompiledBlock()
    assert isinstance(model.block, torch.nn.Module)
    assert list(model.state_dict()) == ["block._orig_mod.weight", "block._orig_mod.bias",
                                        "head.weight", "head.bias"]
    assert len(list(model.parameters())) == 4
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.block.weight.detach().clone()
    opt.zero_grad()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    assert not torch.equal(model.block.weight, before)
    sequential = torch.nn.Sequential(torch.compile(torch.nn.Linear(3, 2)), torch.nn.ReLU())
    assert sequential(torch.ones(1, 3)).shape == (1, 2)


def test_a_compiled_module_copies_saves_and_switches_modes():
    import copy
    import io
    torch.manual_seed(0)
    dropout_net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    compiled = torch.compile(dropout_net)
    x = torch.ones(2, 3)
    compiled(x)
    compiled.eval()
    assert not dropout_net.training and not compiled.training
    _assert_close(compiled(x), dropout_net(x))        # eval: no dropout
    twin = copy.deepcopy(compiled)
    assert type(twin).__name__ == "OptimizedModule"
    assert twin._orig_mod[0].weight is not dropout_net[0].weight
    _assert_close(twin(x), compiled(x))
    buffer = io.BytesIO()
    torch.save(compiled, buffer)
    buffer.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        restored = torch.load(buffer, weights_only=False)
    _assert_close(restored(x), compiled(x))


def test_a_users_error_is_raised_as_eager_raises_it_without_compile_noise():
    norm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
    compiled = torch.compile(norm)
    compiled(torch.randn(5, 4))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            compiled(torch.randn(1, 4))
    assert [str(w.message) for w in record] == []


def _fails_only_while_traced(x):
    if torch.compiler.is_compiling():
        raise KeyError("a limitation of the trace")
    return x + 1


def test_a_trace_failure_that_eager_does_not_share_still_warns_once():
    compiled = torch.compile(_fails_only_while_traced)
    with pytest.warns(RuntimeWarning, match=r"tracing _fails_only_while_traced failed at "
                                            r".*test_user_compile_api\.py:\d+.*KeyError"):
        _assert_close(compiled(torch.ones(2)), torch.ones(2) + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_close(compiled(torch.ones(2)), torch.ones(2) + 1)   # warned once
