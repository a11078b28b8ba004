"""Views: movement ops as index math over a buffer, never copies (tinygrad's ShapeTracker).

A ``View`` maps a multi-index ``i`` of its ``shape`` to the linear position
``offset + sum(i[d] * strides[d])`` in the contiguous layout of the shape below it, and
says whether that position is real: outside ``mask`` (one ``(lo, hi)`` per dim) the view
reads ``fill`` instead (PAD's value).  A ``ShapeTracker`` is a chain of views:
``views[0]`` indexes the base buffer, each later view indexes the contiguous layout of the
shape of the view before it.  Movement ops merge into the last view when they can (every
permute, expand, slice and most reshapes) and push a new view when they cannot (reshaping
a padded or non-mergeable view, windows over a padded dim, two pads with different fill
values), so any chain of movement ops stays exact and composable.

>>> st = ShapeTracker.from_shape((2, 3)).permute((1, 0)).slice((slice(None, None, -1),
...                                                               slice(None)))
>>> st.views[-1]
View(shape=(3, 2), strides=(-1, 3), offset=2, mask=None, fill=None)
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

import numpy as np


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order element strides of ``shape`` (size-1 dims get stride 0: they never move)."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc if n != 1 else 0)
        acc *= n
    return tuple(reversed(strides))


def _canonical(shape, strides):
    return tuple(0 if n == 1 else s for n, s in zip(shape, strides))


@dataclass(frozen=True)
class View:
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    mask: tuple[tuple[int, int], ...] | None = None
    fill: object = None

    @staticmethod
    def contiguous(shape: tuple[int, ...]) -> "View":
        return View(tuple(shape), contiguous_strides(tuple(shape)))

    @property
    def is_contiguous(self) -> bool:
        """True when the view is a plain reshape of its base (index passes through)."""
        return (self.mask is None and self.offset == 0
                and _canonical(self.shape, self.strides) == contiguous_strides(self.shape))

    def is_injective(self) -> bool:
        """Sufficient test that no two indices read the same element (no duplication)."""
        dims = sorted((abs(s), n) for n, s in zip(self.shape, self.strides) if n > 1)
        reach = 0
        for stride, n in dims:
            if stride <= reach:
                return False
            reach += stride * (n - 1)
        return True


def _drop_full_mask(v: View) -> View:
    if v.mask is not None and all(lo <= 0 and hi >= n for (lo, hi), n in zip(v.mask, v.shape)):
        return replace(v, mask=None, fill=None)
    return v


def _reshape_strides(old_shape, old_strides, new_shape):
    """Strides that make ``new_shape`` index the same elements, or None (NumPy's nocopy)."""
    old = [(n, s) for n, s in zip(old_shape, old_strides) if n != 1]
    new_strides = [0] * len(new_shape)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_shape) and oi < len(old):
        np_, op = new_shape[ni], old[oi][0]
        while np_ != op:
            if np_ < op:
                np_ *= new_shape[nj]
                nj += 1
            else:
                op *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        new_strides[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            new_strides[k - 1] = new_strides[k] * new_shape[k]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    return tuple(_canonical(new_shape, new_strides))


@dataclass(frozen=True)
class ShapeTracker:
    views: tuple[View, ...]

    @staticmethod
    def from_shape(shape: tuple[int, ...]) -> "ShapeTracker":
        return ShapeTracker((View.contiguous(tuple(shape)),))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape

    @property
    def last(self) -> View:
        return self.views[-1]

    def _with_last(self, v: View) -> "ShapeTracker":
        return ShapeTracker(self.views[:-1] + (_drop_full_mask(v),))

    def _push(self, shape) -> "ShapeTracker":
        """Start a new view over the current shape's contiguous layout."""
        return ShapeTracker(self.views + (View.contiguous(tuple(shape)),))

    def is_identity(self, base_shape) -> bool:
        return len(self.views) == 1 and self.last.is_contiguous and self.shape == tuple(base_shape)

    def is_reshape(self) -> bool:
        """A single view that only renames the base's contiguous elements."""
        return len(self.views) == 1 and self.last.is_contiguous

    def is_injective(self) -> bool:
        return all(v.is_injective() for v in self.views)

    # -- movement ops -------------------------------------------------------------------

    def reshape(self, new_shape) -> "ShapeTracker":
        new_shape = tuple(int(n) for n in new_shape)
        v = self.last
        assert prod(new_shape) == prod(v.shape), (v.shape, new_shape)
        if v.shape == new_shape:
            return self
        if prod(new_shape) == 0:
            return ShapeTracker((View.contiguous(new_shape),))
        if v.mask is None:
            strides = _reshape_strides(v.shape, v.strides, new_shape)
            if strides is not None:
                return self._with_last(View(new_shape, strides, v.offset))
        # NOTE: a masked or non-mergeable view stays as it is; the new shape re-indexes it.
        base = ShapeTracker(self.views[:-1] + (v,))
        return ShapeTracker(base.views + (View.contiguous(new_shape),))

    def permute(self, perm) -> "ShapeTracker":
        v = self.last
        mask = None if v.mask is None else tuple(v.mask[p] for p in perm)
        return self._with_last(View(tuple(v.shape[p] for p in perm),
                                    tuple(v.strides[p] for p in perm), v.offset, mask, v.fill))

    def expand(self, shape) -> "ShapeTracker":
        shape = tuple(int(n) for n in shape)
        st = self
        if len(shape) > len(st.shape):
            st = st.reshape((1,) * (len(shape) - len(st.shape)) + st.shape)
        v = st.last
        strides = tuple(s if old == new else 0
                        for old, new, s in zip(v.shape, shape, v.strides))
        for old, new in zip(v.shape, shape):
            assert old == new or old == 1, (v.shape, shape)
        mask = None
        if v.mask is not None:
            mask = tuple(m if old == new else ((0, new) if m[1] > m[0] else (0, 0))
                         for old, new, m in zip(v.shape, shape, v.mask))
        return st._with_last(View(shape, strides, v.offset, mask, v.fill))

    def broadcast_to(self, shape) -> "ShapeTracker":
        """NumPy implicit broadcasting of this view to ``shape``."""
        return self if self.shape == tuple(shape) else self.expand(shape)

    def slice(self, index) -> "ShapeTracker":
        v = self.last
        shape, strides, offset = list(v.shape), list(v.strides), v.offset
        mask = None if v.mask is None else list(v.mask)
        for d, sl in enumerate(index):
            r = range(v.shape[d])[sl]
            shape[d], strides[d] = len(r), v.strides[d] * r.step
            if len(r):
                offset += r.start * v.strides[d]
            if mask is not None:
                pos = r.start + np.arange(len(r)) * r.step
                ok = np.nonzero((pos >= mask[d][0]) & (pos < mask[d][1]))[0]
                mask[d] = (int(ok[0]), int(ok[-1]) + 1) if len(ok) else (0, 0)
        new = View(tuple(shape), _canonical(shape, strides), offset,
                   None if mask is None else tuple(mask), v.fill)
        return self._with_last(new)

    def pad(self, pads, value) -> "ShapeTracker":
        st = self
        if any(b < 0 or a < 0 for b, a in pads):  # negative padding crops
            # NOTE: a crop past the dim's end leaves none of it: the whole result of that
            # dim is fill (slicing clamped the crop, so (-2, 1) of size 1 kept size 1)
            gone = [max(-b, 0) + max(-a, 0) > n for (b, a), n in zip(pads, st.shape)]
            st = st.slice(tuple(slice(0, 0) if g else slice(max(-b, 0), n - max(-a, 0))
                                for (b, a), n, g in zip(pads, st.shape, gone)))
            pads = tuple((0, n + b + a) if g else (max(b, 0), max(a, 0))
                         for (b, a), n, g in zip(pads, self.shape, gone))
        if all(b == 0 and a == 0 for b, a in pads):
            return st
        v = st.last
        if v.mask is not None and v.fill != value:
            st = st._push(v.shape)
            v = st.last
        old_mask = v.mask or tuple((0, n) for n in v.shape)
        shape = tuple(n + b + a for n, (b, a) in zip(v.shape, pads))
        offset = v.offset - sum(b * s for (b, _), s in zip(pads, v.strides))
        mask = tuple((lo + b, hi + b) for (lo, hi), (b, _) in zip(old_mask, pads))
        return st._with_last(View(shape, v.strides, offset, mask, value))

    def windows(self, window, stride, dilation) -> "ShapeTracker":
        """Sliding windows over the trailing dims, appended as new trailing dims."""
        k = len(window)
        st = self
        v = st.last
        if v.mask is not None and any(m != (0, n) for m, n in zip(v.mask[-k:], v.shape[-k:])):
            st = st._push(v.shape)
            v = st.last
        lead = len(v.shape) - k
        out_shape, out_strides, win_shape, win_strides = [], [], [], []
        for d in range(k):
            n, s = v.shape[lead + d], v.strides[lead + d]
            w, step, dil = window[d], stride[d], dilation[d]
            out_shape.append(max((n - dil * (w - 1) - 1) // step + 1, 0))
            out_strides.append(s * step)
            win_shape.append(w)
            win_strides.append(s * dil)
        shape = v.shape[:lead] + tuple(out_shape) + tuple(win_shape)
        strides = v.strides[:lead] + tuple(out_strides) + tuple(win_strides)
        mask = None if v.mask is None else v.mask[:lead] + tuple((0, n) for n in shape[lead:])
        return st._with_last(View(shape, _canonical(shape, strides), v.offset, mask, v.fill))

    def __str__(self) -> str:
        parts = []
        for v in self.views:
            text = f"{list(v.shape)}:{list(v.strides)}+{v.offset}"
            if v.mask is not None:
                text += f" mask={list(v.mask)} fill={v.fill!r}"
            parts.append(text)
        return " -> ".join(parts)


def gather_numpy(st: ShapeTracker, base: np.ndarray) -> np.ndarray:
    """Evaluate view ``st`` of ``base`` with NumPy fancy indexing (a copy): the reference
    meaning of a ShapeTracker, also used by the executor for rare non-strided views."""
    flat = np.ascontiguousarray(base).reshape(-1)
    multi = list(np.indices(st.shape, dtype=np.int64)) if st.shape else []
    guards = []
    lin = np.zeros(st.shape, dtype=np.int64)
    for k in range(len(st.views) - 1, -1, -1):
        v = st.views[k]
        lin = np.full(st.shape, v.offset, dtype=np.int64)
        for m, s in zip(multi, v.strides):
            lin = lin + m * s
        if v.mask is not None:
            valid = np.ones(st.shape, dtype=bool)
            for m, (lo, hi) in zip(multi, v.mask):
                valid &= (m >= lo) & (m < hi)
            lin = np.where(valid, lin, 0)
            guards.append((valid, v.fill))
        if k:
            below = st.views[k - 1].shape
            multi = list(np.unravel_index(lin, below)) if below else []
    out = flat[lin] if flat.size else np.zeros(st.shape, dtype=base.dtype)
    for valid, fill in reversed(guards):
        out = np.where(valid, out, np.asarray(fill).astype(base.dtype))
    return np.asarray(out, dtype=base.dtype)


def strided_numpy(st: ShapeTracker, base: np.ndarray) -> np.ndarray | None:
    """Zero-copy NumPy view of ``base`` for a single unmasked view, else None."""
    if len(st.views) != 1 or st.last.mask is not None:
        return None
    v = st.last
    flat = base.reshape(-1)
    if flat.size == 0 or prod(v.shape) == 0:
        return np.zeros(v.shape, dtype=base.dtype)
    item = base.dtype.itemsize
    return np.lib.stride_tricks.as_strided(flat[v.offset:], v.shape,
                                           tuple(s * item for s in v.strides), writeable=False)
