"""matmul / mm / bmm / mv / dot / outer with ``torch.matmul``'s rank rules."""
from __future__ import annotations

from .._dispatch import apply
from .._primitives import PRIMITIVES as P
from .._primitives.registry import ShapeError
from .._tensor import Tensor
from ..codegen.ops import Op
from .dtype_names import c_type_name, scalar_type_name
from .einsum import einsum  # noqa: F401  (public here: __all__)
from .math import promote
from .shape import reshape, unsqueeze


def _check_inner(name: str, a: Tensor, b: Tensor, ka: int, kb: int) -> None:
    if ka != kb:
        raise ShapeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"multiplied ({ka} != {kb})")


def _check_same_dtype(name: str, a, b) -> None:
    """PyTorch multiplies matrices of one dtype only: ``int64 @ float32`` raises rather
    than promoting (a cheap test on the common path: two dtype objects compared)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype != b._data.dtype:
        da, db = a._data.dtype, b._data.dtype
        if name == "dot":
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                               f"{scalar_type_name(da)} and {scalar_type_name(db)}")
        raise RuntimeError(f"{name}: expected m1 and m2 to have the same dtype, but got: "
                           f"{c_type_name(da)} != {c_type_name(db)} (shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)})")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return _matmul(a, b, "matmul")


def _matmul(a: Tensor, b: Tensor, name: str) -> Tensor:
    _check_same_dtype(name, a, b)
    a, b = promote(a, b, name)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: both arguments need at least 1 dimension, got "
                         f"{tuple(getattr(a, 'shape', ()))} and {tuple(getattr(b, 'shape', ()))}")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    _check_inner("matmul", a, b, ka, kb)
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = unsqueeze(a, 0)
    if squeeze_b:
        b = unsqueeze(b, 1)
    if a.ndim > 2 and b.ndim == 2 and ka != 0:   # (reshape cannot infer -1 beside 0)
        # NOTE (folded batch): a stack of matrices times one matrix is one matrix product
        # over the stack's rows, as PyTorch folds it. Its backward then computes b's
        # gradient as one product over every row too, where the batched form made one
        # product per matrix of the stack and summed them (an RNN's input projection
        # over T steps: a (T, in, gates) temp and a sum over T, a kernel per length).
        rows = reshape(a, (-1, ka))
        out = reshape(apply(P[Op.MATMUL], (rows, b)), tuple(a.shape[:-1]) + (b.shape[-1],))
    else:
        out = apply(P[Op.MATMUL], (a, b))
    if squeeze_a or squeeze_b:
        shape = tuple(out.shape)
        if squeeze_b:
            shape = shape[:-1]
        if squeeze_a:
            shape = shape[:-2] + shape[-1:] if not squeeze_b else shape[:-1]
        out = reshape(out, shape)
    return out


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return _matmul(a, b, "mm")


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expected 3-D tensors with the same batch size, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return _matmul(a, b, "bmm")


def mv(a: Tensor, v: Tensor) -> Tensor:
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expected a 2-D matrix and a 1-D vector, got shapes "
                         f"{tuple(a.shape)} and {tuple(v.shape)}")
    return _matmul(a, v, "mv")


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError(f"dot: expected 1-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return _matmul(a, b, "dot")


inner = dot


def outer(a: Tensor, b: Tensor) -> Tensor:
    return unsqueeze(a, 1) * unsqueeze(b, 0)


ger = outer


def addmm(input: Tensor, a: Tensor, b: Tensor, *, beta=1, alpha=1) -> Tensor:
    prod = mm(a, b)
    if alpha != 1:
        prod = prod * alpha
    return prod + (input if beta == 1 else input * beta)


def baddbmm(input, a, b, *, beta=1, alpha=1):
    prod = bmm(a, b)
    if alpha != 1:
        prod = prod * alpha
    return prod + (input if beta == 1 else input * beta)


__all__ = ["matmul", "mm", "bmm", "mv", "dot", "inner", "outer", "ger", "addmm", "baddbmm",
           "einsum"]
