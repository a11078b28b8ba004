"""Argument checks for convolution and pooling, with PyTorch's wording. They look at
Python ints and shapes only, so they cost next to nothing on every eager call."""
from __future__ import annotations

from .._ops.dtype_names import scalar_type_name
from .._primitives.registry import ShapeError
from .._tensor import Tensor


def check_conv_args(name: str, stride: tuple, padding, dilation: tuple) -> None:
    """``padding`` is a tuple of ints or a pad list of (before, after) pairs."""
    flat = [p for pair in padding for p in (pair if isinstance(pair, tuple) else (pair,))]
    if flat and min(flat) < 0:
        raise RuntimeError(f"{name}: negative padding is not supported, got padding="
                           f"{tuple(padding)}")
    if min(stride) <= 0:
        raise RuntimeError(f"{name}: non-positive stride is not supported, got stride={stride}")
    if min(dilation) <= 0:
        raise RuntimeError(f"{name}: dilation should be greater than zero, but got "
                           f"{list(dilation)}")


def check_conv_input(name: str, input: Tensor, weight: Tensor, groups: int, n: int) -> None:
    """Rank, channels, groups and dtype of a convolution's input against its weight."""
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                         f"{name}, but got input of size: {list(input.shape)}")
    if weight.ndim != n + 2:
        raise ShapeError(f"{name}: expected a {n + 2}-D weight (out_channels, "
                         f"in_channels / groups, *kernel), got size {list(weight.shape)}")
    if groups <= 0:
        raise RuntimeError(f"{name}: non-positive groups is not supported, got groups={groups}")
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size "
                           f"{list(weight.shape)} instead ({name})")
    c = input.shape[-n - 1]
    if c != weight.shape[1] * groups:
        raise ShapeError(f"Given groups={groups}, weight of size {list(weight.shape)}, "
                         f"expected input{list(input.shape)} to have "
                         f"{weight.shape[1] * groups} channels, but got {c} channels instead "
                         f"({name})")
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(f"{name}: expected scalar type {scalar_type_name(input._data.dtype)}"
                           f" but found {scalar_type_name(weight._data.dtype)} (input and "
                           f"weight must have the same dtype)")


def check_pool_args(name: str, kernel: tuple, stride: tuple, padding: tuple,
                    dilation: tuple) -> None:
    if min(kernel) <= 0:
        raise RuntimeError(f"{name}: kernel size should be greater than zero, but got "
                           f"kernel_size={kernel}")
    if 0 in stride:
        raise RuntimeError(f"{name}: stride should not be zero")
    if min(stride) < 0:
        raise RuntimeError(f"{name}: stride should be greater than zero, but got "
                           f"stride={stride}")
    if min(padding) < 0:
        raise RuntimeError(f"{name}: pad must be non-negative, but got pad: {padding}")
    if min(dilation) <= 0:
        raise RuntimeError(f"{name}: dilation should be greater than zero, but got "
                           f"dilation={dilation}")
