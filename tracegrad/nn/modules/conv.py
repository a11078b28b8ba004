"""Conv1d/2d/3d and ConvTranspose1d/2d/3d."""
from __future__ import annotations

import math

from ..._ops.creation import empty
from ..._primitives.registry import ShapeError
from ..._tensor import Tensor
from .. import functional as F
from .. import init
from .._conv import _tuple
from ..parameter import Parameter
from .module import Module


class _ConvNd(Module):
    _n = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None, output_padding=0) -> None:
        super().__init__()
        n = self._n
        name = type(self).__name__
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple(kernel_size, n, name)
        self.stride = _tuple(stride, n, name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 f"{{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n, name)
        self.dilation = _tuple(dilation, n, name)
        self.output_padding = _tuple(output_padding, n, name)
        self.groups = groups
        self.padding_mode = padding_mode
        self.transposed = self._transposed
        kw = {"dtype": dtype} if dtype is not None else {}
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, **kw))
        if bias:
            self.bias = Parameter(empty(out_channels, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _check_input(self, input: Tensor) -> None:
        n = self._n
        spatial = ("L", "H, W", "D, H, W")[n - 1]
        if input.ndim not in (n + 1, n + 2) or input.shape[-n - 1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input of shape (N, C, {spatial}) or "
                             f"(C, {spatial}) with C = in_channels = {self.in_channels}, got "
                             f"shape {tuple(input.shape)}")

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def _padded(self, input: Tensor):
        """Non-zero padding modes pad explicitly, then convolve without padding."""
        if self.padding_mode == "zeros" or self.padding == "valid":
            return input, self.padding
        if self.padding != "same" and any(p < 0 for p in self.padding):
            # F.pad would crop instead, so check before it
            raise RuntimeError(f"{type(self).__name__}: negative padding is not supported, "
                               f"got padding={self.padding}")
        if self.padding == "same":
            pads = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
        else:
            pads = [(p, p) for p in self.padding]
        flat = []
        for b, a in reversed(pads):
            flat += [b, a]
        return F.pad(input, flat, mode=self.padding_mode), 0


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)`` (PyTorch's cross-correlation)."""
    _n = 1

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        x, padding = self._padded(input)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)``.

    >>> import tracegrad as torch
    >>> torch.nn.Conv2d(1, 4, 3, padding=1)(torch.zeros(2, 1, 8, 8)).shape
    tracegrad.Size([2, 4, 8, 8])
    """
    _n = 2

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        x, padding = self._padded(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f'{type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        n = self._n
        output_size = tuple(output_size)[-n:]
        out = []
        for i in range(n):
            size = input.shape[-n + i]
            base = ((size - 1) * self.stride[i] - 2 * self.padding[i]
                    + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = output_size[i] - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"requested an output size of {output_size}, but valid "
                                 f"sizes differ from {base} by less than the stride")
            out.append(extra)
        return tuple(out)


class ConvTranspose1d(_ConvTransposeNd):
    _n = 1

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        self._check_input(input)
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """The transpose (input-gradient) of Conv2d; ``weight``: ``(C_in, C_out/groups, kH, kW)``."""
    _n = 2

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        self._check_input(input)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class Conv3d(_ConvNd):
    """3-D convolution over ``(N, C_in, D, H, W)``."""
    _n = 3

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        x, padding = self._padded(input)
        return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class ConvTranspose3d(_ConvTransposeNd):
    _n = 3

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        self._check_input(input)
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)
