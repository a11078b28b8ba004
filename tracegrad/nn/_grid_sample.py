"""``F.affine_grid`` and ``F.grid_sample`` (2-D and 3-D; bilinear/nearest; zeros, border
and reflection padding; align_corners) as composites.

grid_sample gathers the ``2 ** n`` corner pixels of each sample point from the flattened
input and weights them by the point's fractional offsets, so autograd carries the
gradient to the input (through the gather: a scatter-add) and to the grid (through the
weights and PyTorch's piecewise unnormalise / clip / reflect of the coordinates).
"""
from __future__ import annotations

import itertools

import numpy as np

from .._ops import math as M
from .._ops.division import fmod
from .._ops.creation import tensor
from .._primitives.registry import ShapeError
from .._tensor import Tensor

_MODES = ("bilinear", "nearest")
_PADDING = ("zeros", "border", "reflection")
# PyTorch's enum values of the modes (scripts pass them to the ATen op)
GRID_SAMPLE_INTERPOLATION_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
GRID_SAMPLE_PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}


def _base_coords(size: int, align_corners: bool, dtype) -> np.ndarray:
    if size <= 1:
        return np.zeros(max(size, 0), dtype)
    lin = np.linspace(-1.0, 1.0, size)
    return (lin if align_corners else lin * (size - 1) / size).astype(dtype)


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` (or ``(N, D, H, W, 3)``) of the affine maps
    ``theta`` ``(N, 2, 3)`` (``(N, 3, 4)``) over the normalised output coordinates.

    >>> import tracegrad as torch
    >>> eye = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> affine_grid(eye, (1, 1, 1, 2), align_corners=True).tolist()
    [[[[-1.0, 0.0], [1.0, 0.0]]]]
    """
    align_corners = bool(align_corners)
    size = tuple(int(s) for s in size)
    if not theta.is_floating_point():
        raise TypeError(f"affine_grid: expected theta to have floating point type, but got "
                        f"{theta.dtype}")
    if len(size) == 4:
        want = (size[0], 2, 3)
    elif len(size) == 5:
        want = (size[0], 3, 4)
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {size}.")
    if tuple(theta.shape) != want:
        kind = "2D" if len(size) == 4 else "3D"
        raise ShapeError(f"affine_grid: Expected a batch of {kind} affine matrices of shape "
                         f"Nx{want[1]}x{want[2]} for size {size}. Got {tuple(theta.shape)}.")
    if min(size) <= 0:
        raise ValueError(f"affine_grid: Expected non-zero, positive output size. Got {size}")
    spatial = size[2:]
    dt = np.dtype(theta._data.dtype)
    axes = [_base_coords(s, align_corners, dt) for s in spatial]   # (D,) H, W
    mesh = np.meshgrid(*axes, indexing="ij")
    # the last grid entry is x (the width), then y, then z: the reversed spatial order
    base = np.stack([m for m in reversed(mesh)] + [np.ones(spatial, dt)], axis=-1)
    base_t = tensor(base.reshape(-1, len(spatial) + 1))
    grid = base_t @ theta.transpose(1, 2)            # (N, prod(spatial), n)
    return grid.reshape((size[0],) + spatial + (len(spatial),))


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    if twice_low == twice_high:
        return coord * 0.0
    low = twice_low / 2
    span = (twice_high - twice_low) / 2
    c = (coord - low).abs()
    extra = fmod(c, span)
    flips = (c / span).floor()
    even = fmod(flips, 2.0) == 0
    return M.where(even, extra + low, span - extra + low)


def _source_coord(coord: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    c = _unnormalize(coord, size, align_corners)
    if padding_mode == "border":
        c = c.clamp(0, size - 1)
    elif padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align_corners else \
            _reflect(c, -1, 2 * size - 1)
        c = c.clamp(0, size - 1)
    return c


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:
    """Sample ``input`` ``(N, C, H, W)`` at the normalised points ``grid``
    ``(N, H_out, W_out, 2)`` (x first; -1 and 1 are the edge pixels' centres with
    ``align_corners``, else their outer edges); 5-D inputs take a 3-D grid.

    >>> import tracegrad as torch
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> grid_sample(x, torch.zeros(1, 1, 1, 2), align_corners=True).tolist()
    [[[[1.5]]]]
    """
    if mode not in _MODES:
        raise ValueError(f"grid_sample: expected mode to be 'bilinear' or 'nearest' (bicubic "
                         f"is not supported here), but got: '{mode}'")
    if padding_mode not in _PADDING:
        raise ValueError(f"grid_sample: expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    align_corners = bool(align_corners)
    if input.ndim not in (4, 5):
        raise ShapeError(f"grid_sample: expected a 4-D or 5-D input, got shape "
                         f"{tuple(input.shape)}")
    n = input.ndim - 2
    if grid.ndim != input.ndim or grid.shape[0] != input.shape[0] or grid.shape[-1] != n:
        raise ShapeError(f"grid_sample: expected grid of shape (N, *out, {n}) with "
                         f"N = {input.shape[0]} and {n} spatial output dims for an input of "
                         f"shape {tuple(input.shape)}, but got grid of shape "
                         f"{tuple(grid.shape)}")
    if input._data.dtype != grid._data.dtype:
        raise TypeError(f"grid_sample: expected input and grid to have the same dtype, but "
                        f"input has {input.dtype} and grid has {grid.dtype}")
    N, C = input.shape[:2]
    spatial = tuple(input.shape[2:])
    out_sp = tuple(grid.shape[1:-1])
    P = int(np.prod(out_sp))
    flat = input.reshape(N, C, -1)
    # source coordinate per input dim d (dims ordered D, H, W; grid entries x, y, z)
    coords = [_source_coord(grid[..., n - 1 - d].reshape(N, P), spatial[d], padding_mode,
                            align_corners) for d in range(n)]
    if mode == "nearest":
        # PyTorch rounds half to even (nearbyint)
        idx = [c.detach().round().long() for c in coords]
        out = _gather(flat, idx, spatial, None, C)
    else:
        lows = [c.detach().floor() for c in coords]
        out = None
        for corner in itertools.product((0, 1), repeat=n):
            idx, w = [], None
            for d, b in enumerate(corner):
                lo = lows[d]
                wd = (lo + 1) - coords[d] if b == 0 else coords[d] - lo
                w = wd if w is None else w * wd
                idx.append((lo + b).long())
            term = _gather(flat, idx, spatial, w, C)
            out = term if out is None else out + term
    return out.reshape((N, C) + out_sp)


def _gather(flat: Tensor, idx: list, spatial: tuple, weight, C: int) -> Tensor:
    """``flat`` ``(N, C, prod(spatial))`` read at the integer points ``idx`` (one
    ``(N, P)`` tensor per dim); points outside read 0."""
    inside = None
    lin = None
    for i, s in zip(idx, spatial):
        ok = (i >= 0) & (i < s)
        inside = ok if inside is None else inside & ok
        ic = i.clamp(0, s - 1)
        lin = ic if lin is None else lin * s + ic
    N, P = lin.shape
    vals = flat.gather(2, lin.unsqueeze(1).expand(N, C, P))
    w = inside.to(flat.dtype) if weight is None else M.where(inside, weight, 0.0)
    return vals * w.unsqueeze(1)
