"""NaN, inf and -inf through every activation and reduction, as PyTorch 2.x gives them.

The expected values are NumPy references written to PyTorch's semantics (checked against
torch 2.13 on the CPU; torch is not needed here): NaN stays NaN through every activation,
``max``/``amax``/``argmax`` treat NaN as the largest value, and the gradient a piecewise
activation sends to a NaN input is the one PyTorch's kernel sends. Every case runs in its
functional form, its module form, its in-place forms, and compiled (equal to eager).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

NAN, INF = float("nan"), float("inf")
X = np.array([NAN, INF, -INF, 0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -0.5, 2.5, -2.5, 25.0,
              -25.0, 0.3], dtype=np.float32)
_erf = np.vectorize(math.erf, otypes=[np.float64])
_SELU_A, _SELU_S = 1.6732632423543772, 1.0507009873554805
_RRELU_EVAL_SLOPE = (1.0 / 8 + 1.0 / 3) / 2


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _where_nan(a, b):
    """``b``, but NaN wherever ``a`` is NaN: the reference form for 'NaN passes through'."""
    return np.where(np.isnan(a), a, b)


# name: (functional form, module form, NumPy reference)
ACTIVATIONS = {
    "relu": (F.relu, lambda: nn.ReLU(), lambda a: np.maximum(a, 0)),
    "relu6": (F.relu6, lambda: nn.ReLU6(), lambda a: np.clip(a, 0, 6)),
    "hardtanh": (F.hardtanh, lambda: nn.Hardtanh(), lambda a: np.clip(a, -1, 1)),
    "threshold": (lambda x, **kw: F.threshold(x, 1.0, 5.0, **kw), lambda: nn.Threshold(1.0, 5.0),
                  lambda a: _where_nan(a, np.where(a > 1.0, a, 5.0))),
    "leaky_relu": (F.leaky_relu, lambda: nn.LeakyReLU(), lambda a: np.where(a > 0, a, a * 0.01)),
    "elu": (F.elu, lambda: nn.ELU(), lambda a: np.where(a > 0, a, np.expm1(a))),
    "selu": (F.selu, lambda: nn.SELU(),
             lambda a: _SELU_S * np.where(a > 0, a, _SELU_A * np.expm1(a))),
    "celu": (lambda x, **kw: F.celu(x, 2.0, **kw), lambda: nn.CELU(2.0),
             lambda a: np.where(a > 0, a, 2.0 * np.expm1(a / 2.0))),
    # NOTE: gelu(inf) is inf as in PyTorch's scalar and float64 kernels (its vectorised
    # float32 kernel gives nan for inf); gelu(-inf) is -inf * 0 = nan in all of them.
    "gelu": (F.gelu, lambda: nn.GELU(), lambda a: a * 0.5 * (1.0 + _erf(a / math.sqrt(2.0)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda: nn.GELU("tanh"),
                  lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (a + 0.044715 * a ** 3)))),
    "silu": (F.silu, lambda: nn.SiLU(), lambda a: a / (1.0 + np.exp(-a))),
    "mish": (F.mish, lambda: nn.Mish(), lambda a: a * np.tanh(np.logaddexp(0, a))),
    "hardsigmoid": (F.hardsigmoid, lambda: nn.Hardsigmoid(), lambda a: np.clip(a / 6 + 0.5, 0, 1)),
    "hardswish": (F.hardswish, lambda: nn.Hardswish(), lambda a: a * np.clip(a + 3, 0, 6) / 6),
    "softplus": (F.softplus, lambda: nn.Softplus(),
                 lambda a: np.where(a > 20, a, np.log1p(np.exp(a)))),
    "softsign": (F.softsign, lambda: nn.Softsign(), lambda a: a / (1 + np.abs(a))),
    "tanhshrink": (F.tanhshrink, lambda: nn.Tanhshrink(), lambda a: a - np.tanh(a)),
    "softshrink": (F.softshrink, lambda: nn.Softshrink(),
                   lambda a: _where_nan(a, np.where(a > 0.5, a - 0.5,
                                                    np.where(a < -0.5, a + 0.5, 0.0)))),
    "hardshrink": (F.hardshrink, lambda: nn.Hardshrink(),
                   lambda a: _where_nan(a, np.where(np.abs(a) > 0.5, a, 0.0))),
    "logsigmoid": (F.logsigmoid, lambda: nn.LogSigmoid(), lambda a: -np.logaddexp(0, -a)),
    "sigmoid": (F.sigmoid, lambda: nn.Sigmoid(), _sigmoid),
    "tanh": (F.tanh, lambda: nn.Tanh(), np.tanh),
    "rrelu_eval": (F.rrelu, lambda: nn.RReLU().eval(),
                   lambda a: np.where(a >= 0, a, a * _RRELU_EVAL_SLOPE)),
    "prelu": (lambda x: F.prelu(x, torch.tensor([0.25])), lambda: nn.PReLU(),
              lambda a: np.where(a > 0, a, a * 0.25)),
    "clamp": (lambda x: torch.clamp(x, -1.0, 1.0), None, lambda a: np.clip(a, -1, 1)),
    "clip_min": (lambda x: x.clip(min=0.5), None, lambda a: np.maximum(a, 0.5)),
}
# Functional forms that take ``inplace=``, and the Tensor methods that write in place.
INPLACE = ["relu", "relu6", "hardtanh", "threshold", "leaky_relu", "elu", "selu", "celu",
           "silu", "mish", "hardsigmoid", "hardswish", "rrelu_eval"]
TENSOR_METHODS = {
    "relu": (lambda x: x.relu(), lambda x: x.relu_(), lambda a: np.maximum(a, 0)),
    "clamp": (lambda x: x.clamp(-1, 1), lambda x: x.clamp_(-1, 1), lambda a: np.clip(a, -1, 1)),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid_(), _sigmoid),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh_(), np.tanh),
}


def _reference(ref, a: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return ref(a.astype(np.float64)).astype(np.float32)


def _check(got, want, what: str):
    got = got.detach().numpy() if isinstance(got, torch.Tensor) else got
    assert got.dtype == want.dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN mask")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_functional_and_module(name):
    fn, module, ref = ACTIVATIONS[name]
    want = _reference(ref, X)
    _check(fn(torch.tensor(X)), want, f"F.{name}")
    if module is not None:
        _check(module()(torch.tensor(X)), want, f"nn module {name}")


@pytest.mark.parametrize("name", INPLACE)
def test_activation_inplace(name):
    fn, _, ref = ACTIVATIONS[name]
    want = _reference(ref, X)
    x = torch.tensor(X)
    out = fn(x, inplace=True)
    assert out is x
    _check(x, want, f"F.{name}(inplace=True)")


@pytest.mark.parametrize("name", sorted(TENSOR_METHODS))
def test_tensor_methods_and_inplace_methods(name):
    method, inplace_method, ref = TENSOR_METHODS[name]
    want = _reference(ref, X)
    _check(method(torch.tensor(X)), want, f"Tensor.{name}")
    x = torch.tensor(X)
    inplace_method(x)
    _check(x, want, f"Tensor.{name}_")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_compiled_equals_eager(name):
    fn, _, ref = ACTIVATIONS[name]
    compiled = torch.compile(lambda x: fn(x * 1.0), fullgraph=True)
    x = torch.tensor(X)
    _check(compiled(x), fn(x).detach().numpy(), f"compiled {name}")
    _check(compiled(x), _reference(ref, X), f"compiled {name} vs reference")


@pytest.mark.parametrize("name", INPLACE)
def test_activation_inplace_compiled(name):
    fn, _, ref = ACTIVATIONS[name]
    compiled = torch.compile(lambda x: fn(x * 1.0, inplace=True), fullgraph=True)
    _check(compiled(torch.tensor(X)), _reference(ref, X), f"compiled F.{name}(inplace=True)")


def test_rrelu_training_keeps_nan_and_infinities():
    torch.manual_seed(0)
    for f in (lambda x: F.rrelu(x, training=True), nn.RReLU().train()):
        out = f(torch.tensor(X)).numpy()
        assert np.isnan(out[0]) and out[1] == INF and out[2] == -INF
        pos = X > 0
        np.testing.assert_array_equal(out[pos], X[pos])
        neg = np.isfinite(X) & (X < 0)
        slope = out[neg] / X[neg]
        assert np.all((slope >= 1 / 8 - 1e-6) & (slope <= 1 / 3 + 1e-6))


# Rows with one special value each, reduced along dim 1 (PyTorch's results in comments).
ROWS = np.array([[NAN, 1, 2], [INF, 1, 2], [-INF, 1, 2], [INF, -INF, 0], [-INF, -INF, -INF],
                 [1, 2, 3]], dtype=np.float32)


def _softmax_ref(a, axis=1):
    e = np.exp(a - np.max(a, axis, keepdims=True))  # inf - inf and NaN rows give NaN
    return e / e.sum(axis, keepdims=True)


def _log_softmax_ref(a, axis=1):
    s = a - np.max(a, axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


SOFTMAXES = {
    "softmax": (lambda x: F.softmax(x, 1), lambda: nn.Softmax(1), _softmax_ref),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda: nn.LogSoftmax(1), _log_softmax_ref),
    "softmin": (lambda x: F.softmin(x, 1), lambda: nn.Softmin(1), lambda a: _softmax_ref(-a)),
    "tensor.softmax": (lambda x: x.softmax(1), None, _softmax_ref),
    "glu": (lambda x: F.glu(torch.cat([x, x.flip(1)], 1), 1), lambda: None,
            lambda a: a * _sigmoid(a[:, ::-1])),
}


@pytest.mark.parametrize("name", sorted(SOFTMAXES))
def test_softmax_family_on_special_rows(name):
    fn, module, ref = SOFTMAXES[name]
    want = _reference(ref, ROWS)
    _check(fn(torch.tensor(ROWS)), want, name)
    if module is not None and module() is not None:
        _check(module()(torch.tensor(ROWS)), want, f"module {name}")
    compiled = torch.compile(fn, fullgraph=True)
    _check(compiled(torch.tensor(ROWS)), want, f"compiled {name}")


# NOTE: PyTorch's max/min/amax/amin propagate NaN; argmax/argmin point at the first NaN.
REDUCTIONS = {
    "max": (lambda x: x.max(1).values, lambda a: np.max(a, 1)),
    "min": (lambda x: x.min(1).values, lambda a: np.min(a, 1)),
    "amax": (lambda x: x.amax(1), lambda a: np.max(a, 1)),
    "amin": (lambda x: x.amin(1), lambda a: np.min(a, 1)),
    "sum": (lambda x: x.sum(1), lambda a: np.sum(a, 1)),
    "mean": (lambda x: x.mean(1), lambda a: np.mean(a, 1)),
    "logsumexp": (lambda x: x.logsumexp(1), lambda a: np.where(
        np.isinf(np.max(a, 1)) & ~np.isnan(a).any(1), np.max(a, 1),
        np.log(np.exp(a - np.max(a, 1, keepdims=True)).sum(1)) + np.max(a, 1))),
    "max_all": (lambda x: x.max(), lambda a: np.max(a)),
    "min_all": (lambda x: x.min(), lambda a: np.min(a)),
    "maximum": (lambda x: torch.maximum(x, torch.tensor(2.0)), lambda a: np.maximum(a, 2.0)),
    "minimum": (lambda x: torch.minimum(x, torch.tensor(2.0)), lambda a: np.minimum(a, 2.0)),
    "max_pool1d": (lambda x: F.max_pool1d(x.unsqueeze(0), 3).squeeze(0),
                   lambda a: a[:, :a.shape[1] // 3 * 3].reshape(len(a), -1, 3).max(-1)),
}
# A wide input too, so the compiled reductions take their vectorised loops; the special
# values sit in the middle of a row, not at the start where the accumulator begins.
WIDE = np.arange(4 * 1000, dtype=np.float32).reshape(4, 1000) / 100.0
WIDE[1, 517], WIDE[2, 333], WIDE[3, 999] = NAN, INF, -INF


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_propagate_nan_eager(name):
    fn, ref = REDUCTIONS[name]
    _check(fn(torch.tensor(ROWS)), _reference(ref, ROWS), name)


@pytest.mark.parametrize("data", [ROWS, WIDE], ids=["rows", "wide"])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_compiled_equal_eager(name, data):
    fn, ref = REDUCTIONS[name]
    compiled = torch.compile(fn, fullgraph=True)
    _check(compiled(torch.tensor(data)), fn(torch.tensor(data)).numpy(), f"compiled {name}")
    _check(compiled(torch.tensor(data)), _reference(ref, data), f"compiled {name} vs reference")


def test_argmax_argmin_point_at_nan():
    x = torch.tensor(ROWS)
    np.testing.assert_array_equal(x.argmax(1).numpy(), [0, 0, 2, 0, 0, 2])
    np.testing.assert_array_equal(x.argmin(1).numpy(), [0, 1, 0, 1, 0, 0])
    assert int(x.argmax()) == 0
    assert int(torch.tensor([1.0, NAN, 3.0]).argmin()) == 1
    values, indices = torch.tensor([1.0, NAN, 3.0]).max(0)
    assert math.isnan(float(values)) and int(indices) == 1


def test_clamp_with_nan_bounds_is_nan_with_and_without_grad():
    bound = torch.tensor([NAN, 0.0, 0.0])
    for requires_grad in (False, True):
        x = torch.tensor([1.0, NAN, -5.0], requires_grad=requires_grad)
        _check(torch.clamp(x, min=bound), np.array([NAN, NAN, 0.0], np.float32),
               f"clamp(min=tensor), requires_grad={requires_grad}")
        _check(torch.clamp(x, max=bound), np.array([NAN, NAN, -5.0], np.float32),
               f"clamp(max=tensor), requires_grad={requires_grad}")


# Gradients PyTorch 2.13 sends back through sum() at these inputs (piecewise activations,
# where the convention at NaN, at the kinks and at +-inf is a choice of the kernel).
G_X = np.array([NAN, INF, -INF, 0.0, 1.0, -1.0, 3.0, -3.0, 6.0, 0.5, -0.5], dtype=np.float32)
_E1, _E05 = math.exp(-1), math.exp(-0.5)
GRADIENTS = {
    "relu": [1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0],
    "relu6": [1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0],
    "hardtanh": [1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1],
    "threshold": [1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0],
    "leaky_relu": [.01, 1, .01, .01, 1, .01, 1, .01, 1, 1, .01],
    "elu": [1, 1, 0, 1, 1, _E1, 1, math.exp(-3), 1, 1, _E05],
    "selu": [_SELU_S, _SELU_S, 0, _SELU_S * _SELU_A, _SELU_S, _SELU_S * _SELU_A * _E1, _SELU_S,
             _SELU_S * _SELU_A * math.exp(-3), _SELU_S, _SELU_S, _SELU_S * _SELU_A * _E05],
    "hardsigmoid": [0, 0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0, 0, 1 / 6, 1 / 6],
    "hardswish": [1, 1, 0, .5, 5 / 6, 1 / 6, 1, 0, 1, 2 / 3, 1 / 3],
    "softshrink": [1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0],
    "hardshrink": [1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0],
    "clamp": [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1],
    "prelu": [.25, 1, .25, .25, 1, .25, 1, .25, 1, 1, .25],
    "rrelu_eval": [_RRELU_EVAL_SLOPE if v else 1 for v in
                   (1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1)],
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_piecewise_gradients_at_nan_kinks_and_infinities(name):
    fn = ACTIVATIONS[name][0]
    want = np.array(GRADIENTS[name], dtype=np.float32)
    x = torch.tensor(G_X, requires_grad=True)
    fn(x).sum().backward()
    _check(x.grad, want, f"grad of {name}")
    x = torch.tensor(G_X, requires_grad=True)
    torch.compile(lambda t: fn(t).sum(), fullgraph=True)(x).backward()
    _check(x.grad, want, f"compiled grad of {name}")
