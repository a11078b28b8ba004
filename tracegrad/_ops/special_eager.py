"""Elementwise functions with no composite of tracegrad's primitives, computed in NumPy
on concrete values: ``lgamma``, ``digamma``, ``erfinv``, ``erfc`` (with gradients written
as tensor code), and ``gcd``, ``lcm``, ``nextafter``, ``frexp`` (no gradient in PyTorch).

NOTE (eager special functions): each reads ``.numpy()``, which a compile trace does not
have: ``@compile`` then runs the function eagerly for that signature with a warning
(DESIGN.md, "compile"), so a compiled result equals the eager one. ``erfc`` is here and
not ``1 - erf``: that composite loses every digit past x = 4 in float32 (erfc(5) =
1.5e-12 comes out 0).
"""
from __future__ import annotations

import math as _math
from collections import namedtuple

import numpy as np

from .._dtype import get_default_dtype
from .math import _describe as describe
from .._tensor import Tensor
from ..autograd.function import Function
from . import math as M
from .creation import from_numpy

_SQRT_PI = _math.sqrt(_math.pi)


def _contiguous(a, dtype=None) -> np.ndarray:
    """A C-contiguous copy; unlike np.ascontiguousarray it keeps 0-d arrays 0-d."""
    return np.array(a, dtype=dtype, order="C")


def _float_values(x: Tensor) -> tuple[np.ndarray, np.dtype]:
    """The values in float64 and the result dtype (integers give the default float)."""
    data = x.detach().numpy()
    out = data.dtype if data.dtype.kind == "f" else np.dtype(get_default_dtype().np)
    return data.astype(np.float64), out


def _lgamma_np(x: np.ndarray) -> np.ndarray:
    def one(v: float) -> float:
        try:
            return _math.lgamma(v)
        except ValueError:   # the poles 0, -1, -2, ...
            return _math.inf
    return np.vectorize(one, otypes=[np.float64])(x) if x.size else x.copy()


def _digamma_np(x: np.ndarray) -> np.ndarray:
    """psi(x): the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 6, then the asymptotic
    series; negative x by reflection psi(x) = psi(1 - x) - pi / tan(pi x)."""
    neg = x < 0
    y = np.where(neg, 1.0 - x, x)
    acc = np.zeros_like(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(6):
            low = y < 6
            acc -= np.where(low, 1.0 / y, 0.0)
            y = np.where(low, y + 1.0, y)
        r = 1.0 / (y * y)
        series = np.log(y) - 0.5 / y - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (
            1 / 240 - r * (1 / 132)))))
        out = acc + series
        out = np.where(neg, out - _math.pi / np.tan(_math.pi * x), out)
    out = np.where(neg & (x == np.floor(x)), np.nan, out)   # the poles -1, -2, ...
    # PyTorch's values at the pole 0: -inf from +0 and +inf from -0
    return np.where(x == 0, np.where(np.signbit(x), np.inf, -np.inf), out)


def _trigamma_np(x: np.ndarray) -> np.ndarray:
    """psi'(x), the same way: psi'(x) = psi'(x + 1) + 1/x**2; reflection
    psi'(x) = pi**2 / sin(pi x)**2 - psi'(1 - x)."""
    neg = x < 0
    y = np.where(neg, 1.0 - x, x)
    acc = np.zeros_like(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(6):
            low = y < 6
            acc += np.where(low, 1.0 / (y * y), 0.0)
            y = np.where(low, y + 1.0, y)
        r = 1.0 / (y * y)
        series = 1 / y + r / 2 + r / y * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r / 30)))
        out = acc + series
        out = np.where(neg, _math.pi ** 2 / np.sin(_math.pi * x) ** 2 - out, out)
    out = np.where(x == -np.inf, np.nan, out)
    return np.where((x <= 0) & (x == np.floor(x)), np.inf, out)


_BERNOULLI_2K = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)
_MAX_SHIFT = 4096   # recurrence steps: x below -4000 gives NaN for n >= 2


def _polygamma_np(n: int, x: np.ndarray) -> np.ndarray:
    """psi^(n)(x) for n >= 2: the recurrence psi^(n)(x) = psi^(n)(x + 1) - (-1)^n n! /
    x^(n+1) up to x >= 15 + 2n, then the asymptotic series with Bernoulli numbers. It is
    PyTorch's value for negative x too (-0.2362 at n=2, x=-1.5); at the poles
    0, -1, ... it is (-1)^(n+1) inf."""
    sign = -1.0 if n % 2 == 0 else 1.0
    fact = float(_math.factorial(n))
    start = 15.0 + 2 * n
    y = x.astype(np.float64).copy()
    acc = np.zeros_like(y)
    finite = np.isfinite(y)
    steps = 0 if not finite.any() else int(min(max(0.0, np.ceil(start - y[finite].min())),
                                               _MAX_SHIFT))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(steps):
            low = y < start
            acc += np.where(low, sign * fact / y ** (n + 1), 0.0)
            y = np.where(low, y + 1.0, y)
        series = _math.factorial(n - 1) / y ** n + fact / (2 * y ** (n + 1))
        for k, b in enumerate(_BERNOULLI_2K, start=1):
            series = series + b * _math.factorial(2 * k + n - 1) / (
                _math.factorial(2 * k) * y ** (2 * k + n))
        out = acc + sign * series
    out = np.where(y < start, np.nan, out)
    out = np.where(x == np.inf, np.nan, out)   # (PyTorch: NaN, not the limit 0)
    return np.where((x <= 0) & (x == np.floor(x)), sign * np.inf, out)


def _erfinv_np(y: np.ndarray) -> np.ndarray:
    """Giles' single-precision approximation, refined by two Newton steps on erf."""
    erf = np.vectorize(_math.erf, otypes=[np.float64])
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -np.log((1.0 - y) * (1.0 + y))
        ws = w - 2.5
        p_small = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
            p_small = c + p_small * ws
        wl = np.sqrt(np.maximum(w, 5.0)) - 3.0
        p_large = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                  -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
            p_large = c + p_large * wl
        x = np.where(w < 5.0, p_small, p_large) * y
        inside = np.abs(y) < 1
        for _ in range(2):
            step = (erf(np.where(inside, x, 0.0)) - y) / (2.0 / _SQRT_PI * np.exp(-x * x))
            x = np.where(inside, x - step, x)
    x = np.where(np.abs(y) == 1, np.copysign(np.inf, y), x)
    return np.where((np.abs(y) > 1) | np.isnan(y), np.nan, x)


def _erfc_np(x: np.ndarray) -> np.ndarray:
    return np.vectorize(_math.erfc, otypes=[np.float64])(x) if x.size else x.copy()


def _unary_function(name: str, values, derivative):
    """A ``Function`` that computes ``values`` (float64 NumPy) on the input's values;
    ``derivative(x, out)`` is tensor code for d out / d x."""
    def forward(ctx, x):
        data, dtype = _float_values(x)
        out = from_numpy(_contiguous(values(data).astype(dtype)))
        ctx.save_for_backward(x, out)
        return out

    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        return M.mul(grad, derivative(M._to_float(x), out))
    return type(name, (Function,), {"forward": staticmethod(forward),
                                    "backward": staticmethod(backward)})


def _eager_tensor_fn(name: str, values):
    def fn(x: Tensor) -> Tensor:
        data, dtype = _float_values(x)
        return from_numpy(_contiguous(values(data).astype(dtype)))
    return fn


def _polygamma_values(n: int):
    if n == 0:
        return _digamma_np
    if n == 1:
        return _trigamma_np
    return lambda x: _polygamma_np(n, x)


_POLYGAMMA: dict = {}


def _polygamma_function(n: int):
    """The ``Function`` for psi^(n); its derivative is psi^(n+1), itself differentiable."""
    if n not in _POLYGAMMA:
        _POLYGAMMA[n] = _unary_function(f"PolygammaBackward{n}", _polygamma_values(n),
                                        lambda x, out: _polygamma_function(n + 1).apply(x))
    return _POLYGAMMA[n]


_Lgamma = _unary_function("LgammaBackward", _lgamma_np, lambda x, out: digamma(x))
_Erfinv = _unary_function("ErfinvBackward", _erfinv_np,
                          lambda x, out: M.mul(M.exp(M.square(out)), _SQRT_PI / 2))
_Erfc = _unary_function("ErfcBackward", _erfc_np,
                        lambda x, out: M.mul(M.exp(M.neg(M.square(x))), -2.0 / _SQRT_PI))


def _operand(x, name: str) -> Tensor:
    x = M.as_tensor_operand(x, name)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor, got {x!r}")
    return x


def lgamma(input: Tensor) -> Tensor:
    """``log |Gamma(x)|``; +inf at the poles 0, -1, -2, ...

    >>> import tracegrad as torch
    >>> torch.lgamma(torch.tensor([1.0, 5.0]))
    tensor([0.0000, 3.1781])
    """
    return _Lgamma.apply(_operand(input, "lgamma"))


def digamma(input: Tensor) -> Tensor:
    """``d/dx log Gamma(x)``; -inf at +0, NaN at the negative integers, as PyTorch."""
    return _polygamma_function(0).apply(_operand(input, "digamma"))


def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of ``digamma``; ``polygamma(0, x)`` is ``digamma(x)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    return _polygamma_function(n).apply(_operand(input, "polygamma"))


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension ``p``:
    ``sum_j lgamma(x - j / 2) + p (p - 1) / 4 log(pi)``."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"mvlgamma: p must be an integer >= 1, got {p!r}")
    x = M._to_float(_operand(input, "mvlgamma"))
    out = lgamma(x)
    for j in range(1, p):
        out = M.add(out, lgamma(M.sub(x, j / 2)))
    return M.add(out, p * (p - 1) / 4 * _math.log(_math.pi))


def erfinv(input: Tensor) -> Tensor:
    """The inverse of ``erf`` on (-1, 1); +-inf at +-1, NaN outside."""
    return _Erfinv.apply(_operand(input, "erfinv"))


def erfc(input: Tensor) -> Tensor:
    """``1 - erf(x)``, accurate where it is tiny (see NOTE (eager special functions))."""
    return _Erfc.apply(_operand(input, "erfc"))


def _integers(op: str, a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = M.promote(_operand(a, op), M.as_tensor_operand(b, op), op)
    dtype = (a if isinstance(a, Tensor) else b)._data.dtype
    if dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer tensors, got {describe(a)} and {describe(b)}")
    av = a.detach().numpy() if isinstance(a, Tensor) else np.asarray(a, dtype)
    bv = b.detach().numpy() if isinstance(b, Tensor) else np.asarray(b, dtype)
    return av, bv


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """>>> import tracegrad as torch
    >>> torch.gcd(torch.tensor([4, -6, 0]), torch.tensor([6, 4, 0]))
    tensor([2, 2, 0])
    """
    a, b = _integers("gcd", input, other)
    return from_numpy(_contiguous(np.gcd(a, b)))


def lcm(input: Tensor, other: Tensor) -> Tensor:
    a, b = _integers("lcm", input, other)
    return from_numpy(_contiguous(np.lcm(a, b)))


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next representable float after ``input`` towards ``other`` (no gradient)."""
    a, b = M.promote(_operand(input, "nextafter"), M.as_tensor_operand(other, "nextafter"),
                     "nextafter")
    if a._data.dtype.kind != "f":
        raise TypeError(f"nextafter: expected floating-point tensors, got {describe(a)}")
    bv = b.detach().numpy() if isinstance(b, Tensor) else np.asarray(b, a._data.dtype)
    return from_numpy(_contiguous(np.nextafter(a.detach().numpy(), bv)))


frexp_result = namedtuple("frexp", ["mantissa", "exponent"])


def frexp(input: Tensor):
    """``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent``, ``|mantissa|`` in
    [0.5, 1); the exponent is int32, as in PyTorch."""
    x = _operand(input, "frexp")
    if x._data.dtype.kind != "f":
        raise TypeError(f"frexp: only floating-point dtypes are supported, got {describe(x)}")
    mantissa, exponent = np.frexp(x.detach().numpy())
    return frexp_result(from_numpy(_contiguous(mantissa)),
                        from_numpy(_contiguous(exponent.astype(np.int32))))


# ``x.polygamma(n)``: the tensor first, unlike ``torch.polygamma(n, x)``
METHOD_FORMS = {"polygamma": lambda self, n: polygamma(n, self)}
__all__ = ["lgamma", "digamma", "polygamma", "mvlgamma", "erfinv", "erfc", "gcd", "lcm", "nextafter", "frexp"]
