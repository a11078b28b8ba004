"""``Size``: a tensor's shape, a tuple that prints like PyTorch's ``torch.Size``."""
from __future__ import annotations

import operator


class Size(tuple):
    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __getitem__(self, item):
        result = tuple.__getitem__(self, item)
        return Size(result) if isinstance(item, slice) else result

    # concatenation and repetition stay a Size, as PyTorch's (``x.shape[:1] + (4,)`` is
    # passed on as a shape and printed as one)
    def __add__(self, other):
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple.__add__(other, self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"tracegrad.Size({list(self)})"


def slice_indices(s: slice, length) -> tuple:
    """``s.indices(length)``, where ``length`` may be a compile guard trace's symbolic size
    (NOTE (no int underneath) in compiler/symint.py): ``slice.indices`` reads it through
    ``__index__``, an escape, where these comparisons and sums follow it (``x[1:]`` of
    ``s0`` rows has ``s0 - 1``).  A plain length takes ``slice.indices`` (a symbolic
    bound then escapes: safe, only not followed)."""
    if type(length) is int:
        return s.indices(length)
    start, stop, step = s.start, s.stop, s.step
    step = 1 if step is None else _index(step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    length = _index(length)
    if length < 0:
        raise ValueError("length should not be negative")
    lower, upper = (-1, length - 1) if step < 0 else (0, length)
    return (_clamped(start, length, lower, upper, upper if step < 0 else lower),
            _clamped(stop, length, lower, upper, lower if step < 0 else upper), step)


def slice_length(s: slice, length):
    """``len(range(*s.indices(length)))``, following a symbolic size (``slice_indices``)."""
    if type(length) is int:
        return len(range(*s.indices(length)))
    start, stop, step = slice_indices(s, length)
    if step > 0:
        return max(0, (stop - start + step - 1) // step)
    return max(0, (start - stop - step - 1) // -step)


def as_float(v) -> float:
    """``float(v)``, where ``v`` may be a compile guard trace's symbolic size: it then stays
    followed (``SymInt.followed_float`` in compiler/symint.py) where ``float()`` would be
    an escape."""
    kind = type(v)
    follow = None if kind is float or kind is int else getattr(kind, "followed_float", None)
    return float(v) if follow is None else follow(v)


def _index(v):
    return v if isinstance(v, int) else operator.index(v)


def _clamped(v, length, lower, upper, default):
    if v is None:
        return default
    v = _index(v)
    if v < 0:
        v = v + length
        return lower if v < lower else v
    return upper if v > upper else v
