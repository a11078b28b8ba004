"""Convolution and pooling as composites: pad, the WINDOWS view (im2col without a copy),
then a matmul (convolution) or a reduction (pooling). The WINDOWS primitive's derivative
rule is the col2im sum, so no gradient code lives here.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._dispatch import apply
from .._ops import shape as S
from .._primitives import PRIMITIVES
from .._primitives.registry import ShapeError
from .._tensor import Tensor, _concrete
from ..codegen.ops import Op
from ._conv_checks import check_conv_args, check_conv_input, check_pool_args


def _tuple(v, n: int, name: str) -> tuple:
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ValueError(f"{name}: expected an int or a tuple of {n} ints, got {v}")
    return v


def windows(x: Tensor, window: tuple, stride: tuple, dilation: tuple) -> Tensor:
    """Sliding windows over the last ``len(window)`` dims: ``(..., *out, *window)``.

    >>> import tracegrad as torch
    >>> windows(torch.arange(5.0), (2,), (1,), (1,)).shape
    tracegrad.Size([4, 2])
    """
    return apply(PRIMITIVES[Op.WINDOWS], (x,),
                 {"window": tuple(window), "stride": tuple(stride), "dilation": tuple(dilation)})


def _pad_spatial(x: Tensor, pads, value=0.0) -> Tensor:
    """Pad the last ``len(pads)`` dims by ``(before, after)`` pairs."""
    lead = [(0, 0)] * (x.ndim - len(pads))
    return S.pad_dims(x, lead + [tuple(p) for p in pads], value)


def _same_padding(k: tuple, dilation: tuple) -> list:
    pads = []
    for kk, d in zip(k, dilation):
        total = d * (kk - 1)
        pads.append((total // 2, total - total // 2))
    return pads


def _conv_padding(padding, k, dilation, stride, n, name):
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions")
            return _same_padding(k, dilation)
        raise ValueError(f"{name}: invalid padding string {padding!r}, should be one of "
                         f"'valid', 'same'")
    return [(p, p) for p in _tuple(padding, n, name)]


def _convnd(input, weight, bias, stride, padding, dilation, groups, n, name):
    check_conv_input(name, input, weight, groups, n)
    unbatched = input.ndim == n + 1
    if unbatched:
        input = input.unsqueeze(0)
    k = tuple(weight.shape[2:])
    stride = _tuple(stride, n, name)
    dilation = _tuple(dilation, n, name)
    pads = _conv_padding(padding, k, dilation, stride, n, name)
    check_conv_args(name, stride, pads if isinstance(padding, str) else
                    _tuple(padding, n, name), dilation)
    x = _pad_spatial(input, pads)
    for size, kk, d in zip(x.shape[2:], k, dilation):
        if size < d * (kk - 1) + 1:
            raise ShapeError(f"{name}: the (padded) input of spatial size "
                             f"{tuple(x.shape[2:])} is smaller than the kernel {k} "
                             f"(dilation {dilation}); input shape {tuple(input.shape)}")
    cols = windows(x, k, stride, dilation)  # (N, C, *out, *k)
    N = cols.shape[0]
    out_sp = tuple(cols.shape[2:2 + n])
    L = int(np.prod(out_sp))
    C_out = weight.shape[0]
    ck = weight.shape[1] * int(np.prod(k))
    out_dims, k_dims = tuple(range(2, 2 + n)), tuple(range(2 + n, 2 + 2 * n))
    if groups == 1:
        # NOTE (channels last in a column): a column is ordered (*k, C), the weight
        # permuted to match, so a column reads runs of C channels.  In a compiled step
        # the activations lie as (N, *spatial, C) (NOTE (sink permutes) in
        # codegen/sink_permutes.py): im2col then copies contiguous runs and col2im adds
        # them back, where (C, *k) read and wrote one element per channel plane.
        cols = cols.permute((0,) + out_dims + k_dims + (1,))      # (N, *out, *k, C)
        w = weight.permute((0,) + out_dims + (1,)).reshape(C_out, ck)   # (C_out, *k, C)
        out = cols.reshape(N * L, ck) @ w.t()  # (N*L, C_out)
        if bias is not None:
            out = out + bias
        out = out.reshape((N,) + out_sp + (C_out,))
        out = out.permute((0, n + 1) + tuple(range(1, n + 1)))
    else:
        g = groups
        cols = cols.permute((0,) + out_dims + (1,) + k_dims)      # (N, *out, C, *k)
        cols = cols.reshape(N * L, g, ck).permute(1, 0, 2)  # (g, N*L, ck)
        w = weight.reshape(g, C_out // g, ck).permute(0, 2, 1)  # (g, ck, C_out/g)
        out = (cols @ w).permute(1, 0, 2).reshape(N * L, C_out)
        if bias is not None:
            out = out + bias
        out = out.reshape((N,) + out_sp + (C_out,))
        out = out.permute((0, n + 1) + tuple(range(1, n + 1)))
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation) over ``(N, C, L)``."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over ``(N, C, H, W)``.

    >>> import tracegrad as torch
    >>> conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution (cross-correlation) over ``(N, C, D, H, W)``."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _dilate(x: Tensor, stride: tuple) -> Tensor:
    """Insert ``stride - 1`` zeros between elements of each of the last dims."""
    n = len(stride)
    for i, s in enumerate(stride):
        if s == 1:
            continue
        dim = x.ndim - n + i
        size = x.shape[dim]
        y = x.unsqueeze(dim + 1)
        pads = [(0, 0)] * y.ndim
        pads[dim + 1] = (0, s - 1)
        y = S.pad_dims(y, pads)
        y = y.reshape(tuple(x.shape[:dim]) + (size * s,) + tuple(x.shape[dim + 1:]))
        x = S.narrow(y, dim, 0, (size - 1) * s + 1)
    return x


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                      dilation, n, name):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    if input.shape[-n - 1] != weight.shape[0]:
        raise ShapeError(f"{name}: expected input with {weight.shape[0]} channels (weight of "
                         f"shape {tuple(weight.shape)}), got input of shape "
                         f"{tuple(input.shape)}")
    unbatched = input.ndim == n + 1
    if unbatched:
        input = input.unsqueeze(0)
    stride = _tuple(stride, n, name)
    padding = _tuple(padding, n, name)
    output_padding = _tuple(output_padding, n, name)
    dilation = _tuple(dilation, n, name)
    check_conv_args(name, stride, padding, dilation)
    if any(p < 0 for p in output_padding):
        raise RuntimeError(f"{name}: negative output_padding is not supported, got "
                           f"output_padding={output_padding}")
    k = tuple(weight.shape[2:])
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{name}: output padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}")
    # NOTE: torch raises for an output size below 1 (conv_transpose1d always; 2d/3d
    # quietly return an empty dim on some paths); here the inner pad then crops more than
    # the dilated input holds, so the sizes are checked first, naming the operation
    sizes = tuple(input.shape[-n:])
    out = tuple((i - 1) * s - 2 * p + d * (kk - 1) + op_ + 1
                for i, s, p, d, kk, op_ in zip(sizes, stride, padding, dilation, k,
                                               output_padding))
    if min(out) < 1:
        raise ShapeError(f"{name}: given input size per channel {sizes}, the calculated "
                         f"output size per channel {out} is too small (stride={stride}, "
                         f"padding={padding}, output_padding={output_padding}, "
                         f"dilation={dilation}, kernel {k})")
    # The transpose of a strided conv: dilate the input by the stride, pad by
    # dilation*(k-1) - padding (plus output_padding after), and correlate with the
    # spatially flipped kernel whose in/out channel roles are swapped per group.
    x = _dilate(input, stride)
    pads = [(d * (kk - 1) - p, d * (kk - 1) - p + op_)
            for kk, d, p, op_ in zip(k, dilation, padding, output_padding)]
    x = _pad_spatial(x, pads)
    cin, cout_g = weight.shape[0], weight.shape[1]
    g = groups
    w = weight.reshape((g, cin // g, cout_g) + k).transpose(1, 2)
    w = w.reshape((g * cout_g, cin // g) + k)
    w = S.flip(w, tuple(range(2, 2 + n)))
    out = _convnd(x, w, bias, 1, 0, dilation, groups, n, name)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """The gradient of conv2d with respect to its input, as a layer (``weight``:
    ``(C_in, C_out / groups, kH, kW)``)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, 3, "conv_transpose3d")


# ---- pooling --------------------------------------------------------------------------
def _pool_geometry(spatial, k, stride, padding, dilation, ceil_mode, name):
    """Per dim: (output size, extra right padding that ceil_mode needs)."""
    out, extra = [], []
    for size, kk, s, p, d in zip(spatial, k, stride, padding, dilation):
        if p > ((kk - 1) * d + 1) // 2:
            raise ValueError(f"{name}: pad should be at most half of effective kernel size, "
                             f"but got pad={p}, kernel_size={kk} and dilation={d}")
        span = d * (kk - 1) + 1
        num = size + 2 * p - span
        o = (-(-num // s) if ceil_mode else num // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1  # the last window must start inside the input or left padding
        # NOTE: with ceil_mode one window may overhang a padded input shorter than the
        # kernel span (PyTorch: output size 1, the overhang is extra right padding)
        if o < 1:
            raise ShapeError(f"{name}: the (padded) input of size {size + 2 * p} is smaller "
                             f"than the kernel span {span}")
        out.append(o)
        extra.append(max(0, (o - 1) * s + span - (size + 2 * p)))
    return out, extra


def _pool_input(input, n, name):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got shape "
                         f"{tuple(input.shape)}")
    return input


def _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                n, name):
    _pool_input(input, n, name)
    k = _tuple(kernel_size, n, name)
    stride = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _tuple(stride, n, name)
    padding = _tuple(padding, n, name)
    dilation = _tuple(dilation, n, name)
    check_pool_args(name, k, stride, padding, dilation)
    _, extra = _pool_geometry(tuple(input.shape[-n:]), k, stride, padding, dilation,
                              ceil_mode, name)
    if not return_indices:
        tiled = _tiles(input, k, stride, padding, dilation, extra)
        if tiled is not None:
            return tiled.amax(tuple(range(input.ndim - n + 1, input.ndim + n, 2)))
    pads = [(p, p + e) for p, e in zip(padding, extra)]
    x = _pad_spatial(input, pads, float("-inf"))
    cols = windows(x, k, stride, dilation)
    axes = tuple(range(cols.ndim - n, cols.ndim))
    out = cols.amax(axes)
    if return_indices:
        return out, _max_pool_indices(input, cols, k, stride, dilation, pads, n, name)
    return out


def _max_pool_indices(input, cols, k, stride, dilation, pads, n, name):
    """Flat indices (into each input plane) of the maxima, like PyTorch's. Computed on the
    host from the windows' values, so a compile trace stops here (and runs eagerly)."""
    arr = _concrete(cols._data, f"{name}(return_indices=True)")
    flat = arr.reshape(arr.shape[:arr.ndim - n] + (-1,))
    arg = flat.argmax(-1)
    offs = np.unravel_index(arg, k)
    spatial = input.shape[-n:]
    out_sp = arr.shape[arr.ndim - 2 * n:arr.ndim - n]
    coords = []
    for i in range(n):
        grid = np.arange(out_sp[i]) * stride[i] - pads[i][0]
        shape = [1] * n
        shape[i] = out_sp[i]
        coords.append(grid.reshape(shape) + offs[i] * dilation[i])
    idx = np.ravel_multi_index(tuple(coords), tuple(spatial), mode="clip")
    from .._ops.creation import tensor
    return tensor(idx.astype(np.int64))


def _tiles(x, k, stride, padding, dilation, extra):
    """Non-overlapping windows (kernel == stride, no padding, sizes divisible) as a
    reshape ``(..., H/k, k, W/k, k)``: a view whose gradient is a reshape, cheaper than
    the general WINDOWS path. None when the pooling is not of that form."""
    n = len(k)
    spatial = tuple(x.shape[-n:])
    if any(p or e for p, e in zip(padding, extra)) or any(d != 1 for d in dilation) or \
            tuple(k) != tuple(stride) or any(s % kk for s, kk in zip(spatial, k)):
        return None
    shape = tuple(x.shape[:-n])
    for s, kk in zip(spatial, k):
        shape += (s // kk, kk)
    return x.reshape(shape)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices, 1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over sliding windows of ``(N, C, H, W)``; padding counts as -inf."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices, 2, "max_pool2d")


def _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, n, name):
    _pool_input(input, n, name)
    k = _tuple(kernel_size, n, name)
    stride = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _tuple(stride, n, name)
    padding = _tuple(padding, n, name)
    ones = (1,) * n
    check_pool_args(name, k, stride, padding, ones)
    _, extra = _pool_geometry(tuple(input.shape[-n:]), k, stride, padding, ones, ceil_mode,
                              name)
    tiled = _tiles(input, k, stride, padding, ones, extra)
    if tiled is not None:
        total = tiled.sum(tuple(range(input.ndim - n + 1, input.ndim + n, 2)))
        return total / float(divisor_override or np.prod(k))
    pads = [(p, p + e) for p, e in zip(padding, extra)]
    x = _pad_spatial(input, pads)
    cols = windows(x, k, stride, ones)
    axes = tuple(range(cols.ndim - n, cols.ndim))
    total = cols.sum(axes)
    if divisor_override:
        return total / float(divisor_override)
    # NOTE: the divisor counts the input, plus the zero padding when count_include_pad,
    # but never the extra right padding that ceil_mode adds (PyTorch's rule).
    spatial = tuple(input.shape[-n:])
    mask = np.ones(spatial)
    mask = np.pad(mask, [(p, p) for p in padding],
                  constant_values=1.0 if count_include_pad else 0.0)
    mask = np.pad(mask, [(0, e) for e in extra])
    count = np.lib.stride_tricks.sliding_window_view(mask, k)[
        tuple(slice(None, None, s) for s in stride)].sum(axis=tuple(range(n, 2 * n)))
    if np.all(count == np.prod(k)):
        return total * (1.0 / float(np.prod(k)))
    from .._ops.creation import tensor
    return total / tensor(count.astype(np.dtype(total._data.dtype)))


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       None, 1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, 2, "avg_pool2d")


def _adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """Row i averages input [floor(i*size/out), ceil((i+1)*size/out))."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start = (i * size) // out
        end = -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _adaptive_avg_poolnd(input, output_size, n, name):
    _pool_input(input, n, name)
    output_size = _tuple(output_size, n, name) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    spatial = tuple(input.shape[-n:])
    output_size = tuple(s if o is None else int(o) for o, s in zip(output_size, spatial))
    from .._ops.creation import tensor
    x = input
    dt = np.dtype(input._data.dtype) if input.is_floating_point() else np.float32
    for i in range(n):
        dim = input.ndim - n + i
        if output_size[i] == spatial[i]:
            continue
        if spatial[i] % output_size[i] == 0:  # equal windows: a reshape and a mean
            k = spatial[i] // output_size[i]
            shape = tuple(x.shape)
            x = x.reshape(shape[:dim] + (output_size[i], k) + shape[dim + 1:]).mean(dim + 1)
            continue
        m = tensor(_adaptive_matrix(spatial[i], output_size[i], dt))
        x = (x.movedim(dim, -1) @ m.t()).movedim(-1, dim)
    return x


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg_poolnd(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (windows of PyTorch's adaptive rule)."""
    return _adaptive_avg_poolnd(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    _pool_input(input, 2, "adaptive_max_pool2d")
    output_size = _tuple(output_size, 2, "adaptive_max_pool2d")
    H, W = input.shape[-2:]
    rows = []
    for i in range(output_size[0]):
        hs, he = (i * H) // output_size[0], -(-((i + 1) * H) // output_size[0])
        cols = []
        for j in range(output_size[1]):
            ws, we = (j * W) // output_size[1], -(-((j + 1) * W) // output_size[1])
            cols.append(input[..., hs:he, ws:we].amax((-2, -1)))
        rows.append(S.stack(cols, -1))
    out = S.stack(rows, -2)
    if return_indices:   # NOTE: was ignored, so `out, idx = ...` unpacked the batch
        return out, _adaptive_max_indices(input, output_size)
    return out


def _adaptive_max_indices(input, output_size):
    """Flat indices (into each input plane) of adaptive_max_pool2d's maxima, the first
    on ties, computed from the values as ``_max_pool_indices`` does."""
    arr = np.asarray(input._data)
    H, W = arr.shape[-2:]
    idx = np.empty(arr.shape[:-2] + tuple(output_size), np.int64)
    for i in range(output_size[0]):
        hs, he = (i * H) // output_size[0], -(-((i + 1) * H) // output_size[0])
        for j in range(output_size[1]):
            ws, we = (j * W) // output_size[1], -(-((j + 1) * W) // output_size[1])
            window = arr[..., hs:he, ws:we]
            a = window.reshape(arr.shape[:-2] + (-1,)).argmax(-1)
            idx[..., i, j] = (hs + a // (we - ws)) * W + ws + a % (we - ws)
    from .._ops.creation import tensor
    return tensor(idx)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: ``(N, C, H, W) -> (N, C*kH*kW, L)``."""
    k = _tuple(kernel_size, 2, "unfold")
    padding = _tuple(padding, 2, "unfold")
    stride = _tuple(stride, 2, "unfold")
    dilation = _tuple(dilation, 2, "unfold")
    check_pool_args("unfold", k, stride, padding, dilation)
    x = _pad_spatial(input, [(p, p) for p in padding])
    cols = windows(x, k, stride, dilation)
    N, C, oh, ow = cols.shape[:4]
    return cols.permute(0, 1, 4, 5, 2, 3).reshape(N, C * k[0] * k[1], oh * ow)


def pixel_shuffle(input, upscale_factor: int):
    r = upscale_factor
    *lead, C, H, W = input.shape
    x = input.reshape(tuple(lead) + (C // (r * r), r, r, H, W))
    n = len(lead)
    x = x.permute(tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return x.reshape(tuple(lead) + (C // (r * r), H * r, W * r))
