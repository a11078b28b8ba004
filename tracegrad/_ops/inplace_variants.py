"""The ``_`` forms of PyTorch's Tensor methods, made systematically from the out-of-place
ones (``sin_``, ``tril_``, ``unsqueeze_``, ...).

Elementwise ones run out of place and write back through ``commit_inplace`` (see
``inplace.py``: same storage, version bump, the tensor takes the new history). The view
ones (``unsqueeze_``, ``t_``, ...) change only the tensor's shape metadata, as in PyTorch:
the tensor then holds the view of its own storage and the view's history.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from . import division as D
from . import math as M
from . import aliases as A
from . import elementwise_extra as E
from . import index_writes as W
from . import products, special_eager as S
from . import matrix, reduce, shape, trig
from .linalg import baddbmm
from .math import _describe as describe
from .inplace import INPLACE_METHODS, check_inplace, elementwise_inplace
from .views import history_alias


def _float_power(old: Tensor, exponent) -> Tensor:
    """float_power's result is float64: PyTorch refuses ``float_power_`` on any other
    base (before the general result-dtype check, with a message of its own)."""
    if old._data.dtype != np.float64:
        raise RuntimeError(f"float_power_: the base {describe(old)} must be float64, the "
                           f"dtype of float_power's result")
    return E.float_power(old, exponent)


# PyTorch's in-place names -> the out-of-place function here
_ELEMENTWISE = {
    "abs_": M.abs, "absolute_": M.abs, "acos_": trig.acos, "arccos_": trig.acos,
    "acosh_": trig.acosh, "arccosh_": trig.acosh, "asin_": trig.asin, "arcsin_": trig.asin,
    "asinh_": trig.asinh, "arcsinh_": trig.asinh, "atan_": trig.atan, "arctan_": trig.atan,
    "atan2_": trig.atan2, "arctan2_": trig.atan2, "atanh_": trig.atanh,
    "arctanh_": trig.atanh, "bitwise_and_": M.bitwise_and, "bitwise_not_": M.bitwise_not,
    "bitwise_or_": M.bitwise_or, "bitwise_xor_": M.bitwise_xor, "cos_": M.cos,
    "cosh_": trig.cosh, "divide_": D.div, "eq_": M.eq, "erf_": M.erf, "exp2_": M.exp2,
    "expm1_": M.expm1, "fix_": M.trunc, "floor_divide_": D.floor_divide, "fmod_": D.fmod,
    "frac_": M.frac, "ge_": M.ge, "gt_": M.gt, "le_": M.le, "lt_": M.lt, "ne_": M.ne,
    "greater_": M.gt, "greater_equal_": M.ge, "less_": M.lt, "less_equal_": M.le,
    "not_equal_": M.ne, "log10_": M.log10, "log1p_": M.log1p, "log2_": M.log2,
    "logical_and_": M.logical_and, "logical_not_": M.logical_not,
    "logical_or_": M.logical_or, "logical_xor_": M.logical_xor, "multiply_": M.mul,
    "negative_": M.neg, "remainder_": D.remainder, "rsqrt_": M.rsqrt, "sin_": M.sin,
    "sinh_": trig.sinh, "square_": M.square, "subtract_": M.sub, "tan_": M.tan,
    "trunc_": M.trunc, "tril_": matrix.tril, "triu_": matrix.triu,
    "clamp_min_": lambda x, min: M.clamp(x, min=min),
    "clamp_max_": lambda x, max: M.clamp(x, max=max),
    "cumsum_": reduce.cumsum,
    "sgn_": A.sgn, "deg2rad_": A.deg2rad, "rad2deg_": A.rad2deg, "erfc_": S.erfc,
    "erfinv_": S.erfinv, "lgamma_": S.lgamma, "digamma_": S.digamma, "logit_": E.logit,
    "sinc_": E.sinc,
}
# the same, for ops that take more operands than the tensor itself
_WITH_OPERANDS = {
    "ldexp_": E.ldexp, "float_power_": _float_power,
    "heaviside_": E.heaviside,
    "nextafter_": S.nextafter, "gcd_": S.gcd, "lcm_": S.lcm, "index_copy_": W.index_copy,
    "masked_scatter_": W.masked_scatter, "scatter_reduce_": W.scatter_reduce, "put_": W.put,
    "addmv_": products.addmv, "addr_": products.addr, "addbmm_": products.addbmm,
    "baddbmm_": baddbmm, "polygamma_": lambda x, n: S.polygamma(n, x), "mvlgamma_": S.mvlgamma,
}


def _metadata_inplace(name: str, view_fn):
    """``x.unsqueeze_(0)``: x itself becomes the view (same storage, new shape)."""
    def method(x: Tensor, *args, **kwargs) -> Tensor:
        check_inplace(x, name)
        # NOTE: the view is taken of an alias: the recorded node must keep the input's old
        # shape, and x's shape is about to change. An alias of a view continues its chain.
        alias = history_alias(x)
        if x._view is not None:
            alias._view = x._view
        out = view_fn(alias, *args, **kwargs)
        if out is alias:
            return x
        # x keeps its identity; its data, history and view chain are the view's. Other
        # views of x made before keep reading the storage with their own shapes.
        x._data = out._data
        x.grad_fn = out.grad_fn
        if x._view is not None:
            x._view = out._view
        return x
    method.__name__ = name
    return method


_METADATA = {
    "unsqueeze_": shape.unsqueeze, "squeeze_": shape.squeeze, "t_": shape.t,
    "transpose_": shape.transpose, "swapaxes_": shape.swapaxes, "swapdims_": shape.swapaxes,
}

# ``int.sin_()`` raises as PyTorch does instead of truncating the float result
VARIANTS = {name: elementwise_inplace(name, fn)
            for name, fn in list(_ELEMENTWISE.items()) + list(_WITH_OPERANDS.items())
            if name not in INPLACE_METHODS}
VARIANTS.update({name: _metadata_inplace(name, fn) for name, fn in _METADATA.items()})

__all__ = ["VARIANTS"]
