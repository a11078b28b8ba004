"""One time step of RNN, LSTM and GRU as plain tensor code (PyTorch's gate order:
LSTM i, f, g, o; GRU r, z, n). The sequence layers and the cells share these; the
fused path (``_rnn_fused.py``) compiles the same functions, so there is one definition
of each recurrence."""
from __future__ import annotations

from ..._ops import math as M
from ..._tensor import Tensor
from .. import functional as F


def rnn_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh, relu: bool) -> Tensor:
    pre = xw + h @ w_hh.t()
    if b_hh is not None:
        pre = pre + b_hh
    return F.relu(pre) if relu else M.tanh(pre)


def lstm_step(xw: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh):
    gates = xw + h @ w_hh.t()
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, -1)
    c = M.sigmoid(f) * c + M.sigmoid(i) * M.tanh(g)
    h = M.sigmoid(o) * M.tanh(c)
    return h, c


def gru_step(xw: Tensor, h: Tensor, w_hh: Tensor, b_hh) -> Tensor:
    hw = h @ w_hh.t()
    if b_hh is not None:
        hw = hw + b_hh
    x_r, x_z, x_n = xw.chunk(3, -1)
    h_r, h_z, h_n = hw.chunk(3, -1)
    r = M.sigmoid(x_r + h_r)
    z = M.sigmoid(x_z + h_z)
    n = M.tanh(x_n + r * h_n)
    return n + z * (h - n)  # (1 - z) * n + z * h
