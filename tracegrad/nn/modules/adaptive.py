"""``AdaptiveLogSoftmaxWithLoss`` (Grave et al., efficient softmax approximation): a head
over the frequent classes plus one entry per cluster of rare ones, each cluster with
its own low-rank tail projection, with PyTorch's layout, init and state_dict keys.

Which rows fall in which cluster is read from the (concrete) targets on the host; the
log-probabilities are tensor ops, so autograd sees through them.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..._ops.creation import tensor, zeros
from ..._ops.shape import cat
from ..._tensor import Tensor, _concrete
from .. import functional as F
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """``forward(input, target)`` gives ``(output, loss)``: each row's log-probability
    of its target and their negated mean; ``log_prob`` gives the full distribution."""

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1 \
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs):
            raise ValueError("cutoffs should be a sequence of unique, positive integers "
                             "sorted in an increasing order, where each value is between 1 "
                             "and n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, dtype=dtype),
                                        Linear(hsz, osz, bias=False, dtype=dtype)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor):
        name = type(self).__name__
        if target_.ndim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError(f"{name}: Input and target should have the same size in "
                                   f"the batch dimension (input {tuple(input_.shape)}, "
                                   f"target {tuple(target_.shape)}).")
            if input_.ndim != 2:
                raise RuntimeError(f"{name}: 1D target tensor expects 2D input tensors, but "
                                   f"found inputs with size {tuple(input_.shape)}")
        elif target_.ndim == 0:
            if input_.ndim != 1:
                raise RuntimeError(f"{name}: 0D target tensor expects 1D input tensors, but "
                                   f"found inputs with size {tuple(input_.shape)}")
        else:
            raise RuntimeError(f"{name}: 0D or 1D target tensor expected, multi-target not "
                               f"supported")
        batched = target_.ndim > 0
        input = input_ if batched else input_.unsqueeze(0)
        tgt = _concrete(target_._data, f"{name}(target)").reshape(-1).astype(np.int64)
        B = tgt.shape[0]
        if B and (tgt.min() < 0 or tgt.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but "
                               f"values in range [{int(tgt.min())}, {int(tgt.max())}] were "
                               f"found. ")
        output = zeros(B, dtype=input.dtype)
        gather_inds = tgt.copy()
        for i in range(1, self.n_clusters + 1):
            low, high = self.cutoffs[i - 1], self.cutoffs[i]
            rows = np.nonzero((tgt >= low) & (tgt < high))[0]
            if rows.size == 0:
                continue
            rows_t = tensor(rows)
            gather_inds[rows] = self.shortlist_size + i - 1
            logprob = F.log_softmax(self.tail[i - 1](input[rows_t]), dim=1)
            local = logprob.gather(1, tensor(tgt[rows] - low).unsqueeze(1)).squeeze(1)
            output = output.index_add(0, rows_t, local)
        head_logprob = F.log_softmax(self.head(input), dim=1)
        output = output + head_logprob.gather(1, tensor(gather_inds).unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster = F.log_softmax(self.tail[i](input), dim=1)
            k = self.shortlist_size + i
            parts.append(cluster + head_logprob[:, k:k + 1])
        return cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of all ``n_classes`` classes, ``(N, n_classes)``."""
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        """The most probable class of each row (``log_prob(input).argmax(1)``: a class
        outside the shortlist never beats the head's best shortlist entry)."""
        return self.log_prob(input).argmax(1)
