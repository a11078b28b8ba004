"""PyTorch's public broadcasting helpers and dim-raising stacks: ``broadcast_shapes``,
``broadcast_tensors``, ``atleast_1d/2d/3d``, ``dstack`` and ``column_stack``. They are
views and ``cat`` underneath (``expand``, ``reshape``), so autograd and ``@compile`` see
through them; the rule itself is ``_primitives.elementwise.broadcast_shapes``."""
from __future__ import annotations

from .._primitives.elementwise import broadcast_shapes as _broadcast_shapes
from .._primitives.elementwise import broadcast_sizes
from .._primitives.registry import ShapeError
from .._size import Size
from .._tensor import Tensor
from .shape import cat, expand, reshape


def _shape_of(s) -> tuple:
    return (s,) if isinstance(s, int) else tuple(s)


def broadcast_shapes(*shapes) -> Size:
    """The shape tensors of ``shapes`` broadcast to.

    >>> import tracegrad as torch
    >>> torch.broadcast_shapes((2, 1), (3,))
    tracegrad.Size([2, 3])
    """
    shapes = [_shape_of(s) for s in shapes]
    if not shapes:
        return Size(())
    try:
        return Size(broadcast_sizes(shapes))
    except ValueError:
        raise ShapeError(f"broadcast_shapes: shapes {' and '.join(map(str, shapes))} cannot be "
                         f"broadcast to a single shape (sizes must match or be 1, aligned "
                         f"from the right)") from None


def broadcast_tensors(*tensors) -> tuple:
    """``tensors`` expanded (as views) to their common shape.

    >>> import tracegrad as torch
    >>> [t.shape for t in torch.broadcast_tensors(torch.zeros(2, 1), torch.zeros(3))]
    [tracegrad.Size([2, 3]), tracegrad.Size([2, 3])]
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = _broadcast_shapes("broadcast_tensors", *tensors)
    return tuple(t if tuple(t.shape) == shape else expand(t, shape) for t in tensors)


def _atleast(n: int, tensors):
    def raise_dims(t: Tensor) -> Tensor:
        if t.ndim >= n:
            return t
        # PyTorch's layouts: a 1-d (k,) becomes (1, k) and then (1, k, 1)
        if t.ndim == 0:
            return reshape(t, (1,) * n)
        if t.ndim == 1:
            return reshape(t, (1, t.shape[0], 1)[:n])
        return reshape(t, tuple(t.shape) + (1,))
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(raise_dims(t) for t in tensors[0])
    if len(tensors) == 1:
        return raise_dims(tensors[0])
    return tuple(raise_dims(t) for t in tensors)


def atleast_1d(*tensors):
    """A 0-d tensor as shape (1,); others as they are (one result per argument)."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Shapes (1, 1) and (1, k) for 0-d and 1-d tensors; others as they are."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Shapes (1, 1, 1), (1, k, 1) and (m, k, 1) for 0-, 1- and 2-d tensors."""
    return _atleast(3, tensors)


def dstack(tensors) -> Tensor:
    """``tensors`` joined along dim 2 after ``atleast_3d``."""
    return cat(list(atleast_3d(*tensors)), 2)


def column_stack(tensors) -> Tensor:
    """1-d (and 0-d) tensors as columns, side by side with 2-d ones."""
    return cat([reshape(t, (t.numel(), 1)) if t.ndim < 2 else t for t in tensors], 1)


__all__ = ["atleast_1d", "atleast_2d", "atleast_3d", "broadcast_shapes", "broadcast_tensors",
           "column_stack", "dstack"]
