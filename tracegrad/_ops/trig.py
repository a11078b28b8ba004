"""Inverse trigonometric and hyperbolic functions.

``atan``, ``atan2`` and ``asinh`` are primitives (``_primitives/trig.py``); the others are
composites chosen for accuracy: ``asin``/``acos`` through ``atan2`` (no ``1 - asin``
cancellation near 1), ``sinh`` through ``expm1`` near 0, ``acosh`` and ``atanh`` through
``log1p``.
"""
from __future__ import annotations

import math as _math

from .._dispatch import apply
from .._primitives import PRIMITIVES as P
from ..codegen.ops import Op
from .math import _to_float, abs, as_tensor_operand, exp, expm1, log, log1p, promote, sqrt, where


def _float(x, name: str):
    return _to_float(as_tensor_operand(x, name))


def atan(input):
    """>>> import tracegrad as torch
    >>> torch.atan(torch.tensor([0.0, 1.0]))
    tensor([0.0000, 0.7854])
    """
    return apply(P[Op.ATAN], (_float(input, "atan"),))


def atan2(input, other):
    """The angle of the point ``(other, input)``, in ``(-pi, pi]``.

    >>> import tracegrad as torch
    >>> torch.atan2(torch.tensor([1.0, -1.0]), torch.tensor([-1.0, -1.0]))
    tensor([ 2.3562, -2.3562])
    """
    y, x = promote(input, other, "atan2")
    y = _to_float(y) if hasattr(y, "_data") else float(y)
    x = _to_float(x) if hasattr(x, "_data") else float(x)
    return apply(P[Op.ATAN2], (y, x))


def asinh(input):
    return apply(P[Op.ASINH], (_float(input, "asinh"),))


def _one_minus_square_root(x):
    # NOTE: (1 - x)(1 + x) rather than 1 - x*x: no cancellation as |x| nears 1
    return sqrt((1 - x) * (1 + x))


def asin(input):
    x = _float(input, "asin")
    return atan2(x, _one_minus_square_root(x))


def acos(input):
    x = _float(input, "acos")
    return atan2(_one_minus_square_root(x), x)


# NOTE (sinh and cosh near overflow): exp(|x|) overflows at |x| = 709.78 (float64; 88.72
# float32) while sinh and cosh stay finite up to 710.48 (89.42): there both were inf,
# eager and compiled (NumPy: 1.1e308 at 710). Past ``_SPLIT`` they are exp(|x|/2)^2 / 2,
# which overflows only where they do (exp(-|x|) is far below their last bit there). Each
# branch's argument is clamped so the one not taken sends no inf or NaN gradient.
# float16 (exp overflows at 11.09, sinh and cosh at 11.78) was left out at first: inf
# from 11.09 where torch gives 33150; with its split, 1.6 ulp at most (float64 reference).
_SPLIT = {"float16": 11.0, "float32": 88.0, "float64": 709.0}


def _half_exp_squared(x):
    """(exp(|x|) / 2 computed without overflowing first, where |x| > _SPLIT; the mask)."""
    split = _SPLIT.get(x.dtype.np.name, 709.0)
    a = abs(x)
    big = a > split
    h = exp(where(big, a, split) * 0.5)
    return h * (h * 0.5), big


def sinh(input):
    x = _float(input, "sinh")
    far, big = _half_exp_squared(x)
    small = where(big, 0.0, x)
    # NOTE: expm1 keeps sinh(1e-5) exact in float32 (exp(x) - exp(-x) loses 3 digits)
    near = (expm1(small) - expm1(-small)) * 0.5
    return where(big, where(x < 0, -far, far), near)


def cosh(input):
    x = _float(input, "cosh")
    far, big = _half_exp_squared(x)
    small = where(big, 0.0, x)
    return where(big, far, (exp(small) + exp(-small)) * 0.5)


def acosh(input):
    x = _float(input, "acosh")
    t = x - 1
    # log1p(t + sqrt(t) sqrt(t + 2)) is exact near 1, NaN below 1 (sqrt(t), as NumPy), and
    # never squares t (t^2 overflows float32 at 2e19). Past 1e15, log(2x) is exact. The
    # large branch's argument is clamped so the branch not taken sends no NaN gradient.
    near = log1p(t + sqrt(t) * sqrt(t + 2))
    big = x > 1e15
    far = log(where(big, x, 1e15)) + _math.log(2.0)
    return where(big, far, near)


def atanh(input):
    x = _float(input, "atanh")
    return (log1p(x) - log1p(-x)) * 0.5


arctan = atan
arctan2 = atan2
arcsin = asin
arccos = acos
arcsinh = asinh
arccosh = acosh
arctanh = atanh

__all__ = ["acos", "acosh", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2",
           "arctanh", "asin", "asinh", "atan", "atan2", "atanh", "cosh", "sinh"]
