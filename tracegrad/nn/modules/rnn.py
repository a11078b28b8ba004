"""RNN, LSTM, GRU and their cells, with PyTorch's parameter names and gate order
(LSTM: i, f, g, o; GRU: r, z, n), so PyTorch state dicts load unchanged.

The time loop is plain Python over tensor ops: each call builds a graph as long as
its own input, so sequences of any length need no padding (the dynamic graph). A float32
CPU sequence runs as one compiled call (or one per step) once its signature has repeated
(``_rnn_fused.py``).
"""
from __future__ import annotations

import math

from ..._ops.creation import empty, zeros
from ..._ops.math import where
from ..._ops.shape import cat, stack
from ..._primitives.registry import ShapeError
from ..._tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .._packed_sequence import PackedSequence, pack_like, step_masks
from . import _rnn_fused
from ._rnn_steps import gru_step as _gru_step
from ._rnn_steps import lstm_step as _lstm_step
from ._rnn_steps import rnn_step as _rnn_step
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be positive")
        if dropout > 0 and num_layers == 1:
            import warnings
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        kw = {"dtype": dtype} if dtype is not None else {}
        gate = _GATES[mode] * hidden_size
        D = 2 if bidirectional else 1
        # NOTE: with proj_size the LSTM's h (its output) is c's gate output times W_hr^T,
        # of size proj_size; c keeps hidden_size (PyTorch's LSTMP)
        out_size = proj_size or hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else out_size * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                names = [("weight_ih" + sfx, (gate, layer_in)),
                         ("weight_hh" + sfx, (gate, out_size))]
                if bias:
                    names += [("bias_ih" + sfx, (gate,)), ("bias_hh" + sfx, (gate,))]
                if proj_size:
                    names += [("weight_hr" + sfx, (proj_size, hidden_size))]
                for name, shape in names:
                    setattr(self, name, Parameter(empty(*shape, **kw)))
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -std, std)

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        per = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        w = self._flat_weights
        return [w[i:i + per] for i in range(0, len(w), per)]

    def flatten_parameters(self) -> None:
        pass

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- forward ---------------------------------------------------------------------
    def _check_input(self, input: Tensor) -> bool:
        if input.ndim not in (2, 3):
            raise ShapeError(f"{self!r}: expected input of shape (L, N, H_in) "
                             f"{'(batch_first: (N, L, H_in))' if self.batch_first else ''} or "
                             f"(L, H_in), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{self!r}: expected input with last dimension {self.input_size} "
                             f"(input_size), got shape {tuple(input.shape)}")
        return input.ndim == 2

    def _check_hidden(self, h: Tensor, batch: int, what: str) -> None:
        D = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size and what != "c_0" else self.hidden_size
        expected = (self.num_layers * D, batch, size)
        if tuple(h.shape) != expected:
            raise ShapeError(f"{self!r}: expected {what} of shape {expected}, got "
                             f"{tuple(h.shape)}")

    def forward(self, input: Tensor, hx=None):
        packed, masks = None, None
        if isinstance(input, PackedSequence):
            # NOTE: run as a padded time-major batch in the original order (hx is given in
            # that order, as in PyTorch); the masks hold each sequence's state after its end
            packed = input
            input, masks = step_masks(packed)
        unbatched = self._check_input(input)
        lstm = self.mode == "LSTM"
        if packed is not None:
            unbatched = False
        elif unbatched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if lstm else hx.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        N = input.shape[1]
        D = 2 if self.bidirectional else 1
        if hx is None:
            h0 = zeros(self.num_layers * D, N, self.proj_size or self.hidden_size,
                       dtype=input.dtype)
            c0 = None
            if lstm:
                c0 = zeros(self.num_layers * D, N, self.hidden_size, dtype=input.dtype) \
                    if self.proj_size else h0
        elif lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{self!r}: hx must be a tuple (h_0, c_0)")
            h0, c0 = hx
            self._check_hidden(h0, N, "h_0")
            self._check_hidden(c0, N, "c_0")
        else:
            h0, c0 = hx, None
            self._check_hidden(h0, N, "hx")
        h_n, c_n = [], []
        x = input
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                idx = layer * D + d
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                out, h, c = self._run_direction(x, sfx, h0[idx], c0[idx] if lstm else None,
                                                reverse=d == 1, masks=masks)
                outs.append(out)
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            x = outs[0] if D == 1 else cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        output = x
        h_n = stack(h_n, 0)
        hidden = (h_n, stack(c_n, 0)) if lstm else h_n
        if packed is not None:
            output = pack_like(output, packed)
        elif unbatched:
            output = output.squeeze(1)
            hidden = tuple(h.squeeze(1) for h in hidden) if lstm else hidden.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, hidden

    def _run_direction(self, x: Tensor, sfx: str, h: Tensor, c, reverse: bool, masks=None):
        w_ih = getattr(self, "weight_ih" + sfx)
        w_hh = getattr(self, "weight_hh" + sfx)
        b_ih = getattr(self, "bias_ih" + sfx) if self.bias else None
        b_hh = getattr(self, "bias_hh" + sfx) if self.bias else None
        # The input projection of every step at once: one (L*N, in) x (in, gates) matmul.
        xw = x @ w_ih.t()
        if b_ih is not None:
            xw = xw + b_ih
        if self.mode != "GRU" and b_hh is not None:
            xw = xw + b_hh  # folded: the recurrence then adds only h @ W_hh^T
            b_hh = None
        mode = self.mode
        fused_mode = "GRU_NO_BIAS" if mode == "GRU" and b_hh is None else mode
        weights = (w_hh, b_hh) if fused_mode == "GRU" else (w_hh,)
        # the whole loop as one compiled call when its signature is warm (_rnn_fused.py)
        args = (xw, h, c, *weights) if mode == "LSTM" else (xw, h, *weights)
        w_hr = getattr(self, "weight_hr" + sfx) if self.proj_size else None
        plain = masks is not None or w_hr is not None   # the fused programs know neither
        fn = None if plain else _rnn_fused.sequence_function(fused_mode, reverse, args)
        out = None if fn is None else _rnn_fused.run_compiled(fn, args)
        if out is not None:
            return out if mode == "LSTM" else (out[0], out[1], None)
        steps = xw.unbind(0)
        order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
        outs = [None] * len(steps)
        relu = mode == "RNN_RELU"
        for t in order:
            # one compiled call per step when the step signature is warm, else eager ops
            args = (steps[t], h, c, *weights) if mode == "LSTM" else (steps[t], h, *weights)
            fn = None if plain else _rnn_fused.step_function(fused_mode, args)
            out = None if fn is None else _rnn_fused.run_compiled(fn, args)
            h_prev, c_prev = h, c
            if out is not None:
                if mode == "LSTM":
                    h, c = out
                else:
                    h = out
            elif mode == "LSTM":
                h, c = _lstm_step(steps[t], h, c, w_hh, b_hh)
                if w_hr is not None:
                    h = h @ w_hr.t()
            elif mode == "GRU":
                h = _gru_step(steps[t], h, w_hh, b_hh)
            else:
                h = _rnn_step(steps[t], h, w_hh, b_hh, relu)
            outs[t] = h
            if masks is not None:
                # a finished sequence keeps its last state (the reverse direction starts
                # from h_0 at its own last step); its outputs past the end are not packed
                h = where(masks[t], h, h_prev)
                if mode == "LSTM":
                    c = where(masks[t], c, c_prev)
        return stack(outs, 0), h, c


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``."""

    def __init__(self, *args, **kwargs) -> None:
        nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if len(args) > 3:
            args = list(args)
            nonlinearity = args.pop(3)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             f"'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory; returns ``output, (h_n, c_n)``.

    >>> import tracegrad as torch
    >>> out, (h, c) = torch.nn.LSTM(3, 5, batch_first=True)(torch.zeros(2, 7, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 7, 5), (1, 2, 5))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n as in PyTorch)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("GRU", *args, **kwargs)


# ---- cells ---------------------------------------------------------------------------
class RNNCellBase(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"dtype": dtype} if dtype is not None else {}
        g = self._gates * hidden_size
        self.weight_ih = Parameter(empty(g, input_size, **kw))
        self.weight_hh = Parameter(empty(g, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(empty(g, **kw))
            self.bias_hh = Parameter(empty(g, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -std, std)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input: Tensor, hx):
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got shape {tuple(input.shape)}")
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
        N = input.shape[0]
        if hx is None:
            h = zeros(N, self.hidden_size, dtype=input.dtype)
            hx = (h, h) if self._gates == 4 else h
        elif unbatched:
            hx = tuple(h.unsqueeze(0) for h in hx) if self._gates == 4 else hx.unsqueeze(0)
        for h in (hx if self._gates == 4 else (hx,)):
            if tuple(h.shape) != (N, self.hidden_size):
                raise ShapeError(f"{self!r}: expected hidden state of shape "
                                 f"{(N, self.hidden_size)}, got {tuple(h.shape)}")
        xw = input @ self.weight_ih.t()
        if self.bias_ih is not None:
            xw = xw + self.bias_ih
        return xw, hx, unbatched


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        xw, h, unbatched = self._prepare(input, hx)
        h = _rnn_step(xw, h, self.weight_hh, self.bias_hh, self.nonlinearity == "relu")
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    _gates = 4

    def forward(self, input: Tensor, hx=None):
        xw, (h, c), unbatched = self._prepare(input, hx)
        h, c = _lstm_step(xw, h, c, self.weight_hh, self.bias_hh)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        xw, h, unbatched = self._prepare(input, hx)
        h = _gru_step(xw, h, self.weight_hh, self.bias_hh)
        return h.squeeze(0) if unbatched else h
