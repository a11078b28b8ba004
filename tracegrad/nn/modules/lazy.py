"""Lazy modules: LazyLinear, LazyConv*/LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*.

Their parameters start as ``UninitializedParameter``; a forward pre-hook reads the
input's feature size on the first call, materialises them, runs the usual init and turns
the module into its ``cls_to_become`` (``LazyLinear`` becomes ``Linear``), PyTorch's
mechanism. A state_dict loaded before the first call materialises them from its shapes.
"""
from __future__ import annotations

import itertools

from ..._ops.creation import tensor
from ..._primitives.registry import ShapeError
from ...autograd.grad_mode import no_grad
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d,
                            InstanceNorm2d, InstanceNorm3d)


class LazyModuleMixin:
    """Parameters inferred from the first input (``initialize_parameters(input)``)."""
    cls_to_become: type | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters)

    def _lazy_load_hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                        unexpected_keys, error_msgs) -> None:
        for name, param in itertools.chain(self._parameters.items(), self._buffers.items()):
            key = prefix + name
            # NOTE: a saved uninitialized entry loads back as an empty tensor (the
            # serializers keep no lazy class): it materialises nothing either
            value = state_dict.get(key)
            if value is not None and param is not None and is_lazy(param) and \
                    not is_lazy(value) and value.numel() > 0:
                with no_grad():
                    param.materialize(tuple(value.shape))

    def _save_to_state_dict(self, destination, prefix: str, keep_vars: bool) -> None:
        # an uninitialized entry is saved as itself (detach would make an empty tensor)
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if is_lazy(p) or keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if is_lazy(b) or keep_vars else b.detach()

    def _infer_parameters(self, module, args) -> None:
        module.initialize_parameters(*args)
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        module._load_hook.remove()
        del module._initialize_hook, module._load_hook
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def has_uninitialized_params(self) -> bool:
        """Whether any parameter or buffer still waits for its shape."""
        return any(is_lazy(p) for p in itertools.chain(self._parameters.values(),
                                                        self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"initialize_parameters is not implemented for "
                                  f"{type(self).__name__}")


class LazyLinear(LazyModuleMixin, Linear):
    """``Linear`` whose ``in_features`` is the last dim of the first input.

    >>> import tracegrad as torch
    >>> m = torch.nn.LazyLinear(2)
    >>> m(torch.ones(3, 5)).shape, type(m).__name__, tuple(m.weight.shape)
    (tracegrad.Size([3, 2]), 'Linear', (2, 5))
    """
    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        if not self.has_uninitialized_params():
            # NOTE: materialised by a loaded state_dict: PyTorch keeps in_features=0, but
            # Linear.forward here checks the input against it
            self.in_features = self.in_features or self.weight.shape[1]
        else:
            with no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()


class _LazyConvMixin(LazyModuleMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None,
                 output_padding=0) -> None:
        if self._transposed:
            super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups,
                             False, dilation, padding_mode)
        else:
            super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False,
                             padding_mode)
        self.weight = UninitializedParameter(dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():   # loaded: see LazyLinear's NOTE
            w = self.weight.shape
            self.in_channels = self.in_channels or (w[0] if self._transposed else
                                                    w[1] * self.groups)
            return
        n = self._n
        if input.ndim not in (n + 1, n + 2):
            raise ShapeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                             f"{self._get_name()}, but got input of size: {list(input.shape)}")
        self.in_channels = input.shape[1] if input.ndim == n + 2 else input.shape[0]
        if self.in_channels % self.groups:
            raise ValueError("in_channels must be divisible by groups")
        g = self.groups
        shape = ((self.in_channels, self.out_channels // g) if self._transposed else
                 (self.out_channels, self.in_channels // g)) + tuple(self.kernel_size)
        with no_grad():
            self.weight.materialize(shape)
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()


def _lazy_conv(base: type, doc: str) -> type:
    if base._transposed:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                     groups=1, bias=True, dilation=1, padding_mode="zeros", device=None,
                     dtype=None) -> None:
            _LazyConvMixin.__init__(self, out_channels, kernel_size, stride, padding,
                                    dilation, groups, bias, padding_mode, device, dtype,
                                    output_padding)
    else:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                     groups=1, bias=True, padding_mode="zeros", device=None,
                     dtype=None) -> None:
            _LazyConvMixin.__init__(self, out_channels, kernel_size, stride, padding,
                                    dilation, groups, bias, padding_mode, device, dtype)
    name = "Lazy" + base.__name__
    return type(name, (_LazyConvMixin, base), {"cls_to_become": base, "__init__": __init__,
                                                "__doc__": doc, "__module__": __name__,
                                                "__qualname__": name})


LazyConv1d = _lazy_conv(Conv1d, "``Conv1d`` whose ``in_channels`` the first input decides.")
LazyConv2d = _lazy_conv(Conv2d, "``Conv2d`` whose ``in_channels`` the first input decides.")
LazyConv3d = _lazy_conv(Conv3d, "``Conv3d`` whose ``in_channels`` the first input decides.")
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, "Lazy ``ConvTranspose1d``.")
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, "Lazy ``ConvTranspose2d``.")
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d, "Lazy ``ConvTranspose3d``.")


class _LazyNormMixin(LazyModuleMixin):
    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, *, bias=True) -> None:
        super().__init__(0, eps, momentum, False, False, dtype=dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(dtype=dtype)
            self.running_var = UninitializedBuffer(dtype=dtype)
            self.num_batches_tracked = tensor(0)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input) -> None:
        # NOTE: the channels are input.shape[1] even for an unbatched instance-norm input
        # (PyTorch 2.13's _LazyNormBase does the same)
        if not self.has_uninitialized_params():   # loaded: see LazyLinear's NOTE
            self.num_features = self.num_features or input.shape[1]
            return
        self.num_features = input.shape[1]
        with no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                value = getattr(self, name)
                if value is not None:
                    value.materialize((self.num_features,))
            self.reset_parameters()


def _lazy_norm(base: type) -> type:
    name = "Lazy" + base.__name__
    return type(name, (_LazyNormMixin, base), {
        "cls_to_become": base, "__module__": __name__, "__qualname__": name,
        "__doc__": f"``{base.__name__}`` whose ``num_features`` is ``input.shape[1]``."})


LazyBatchNorm1d = _lazy_norm(BatchNorm1d)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d)
