"""clip_grad_norm_, clip_grad_value_, get_total_norm, clip_grads_with_norm_."""
from __future__ import annotations

import numpy as np

from ..._dispatch import is_tracing
from ..._ops.shape import stack
from ..._tensor import Tensor
from ...linalg._norms import vector_norm
from ...autograd.grad_mode import no_grad


def _params(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _vector_norm(a: np.ndarray, norm_type: float) -> float:
    """``torch.linalg.vector_norm(a, norm_type)`` of a NumPy array, in float64: inf/-inf
    are the largest/smallest magnitude, 0 counts the nonzero entries (NaN propagates)."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    if a.size == 0:
        return 0.0
    if norm_type == float("inf"):
        return float(a.max())
    if norm_type == float("-inf"):
        return float(a.min())
    if norm_type == 0:
        return float(np.count_nonzero(a))
    return float(np.sum(a ** norm_type) ** (1.0 / norm_type))


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    from ..._ops.creation import tensor
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    with no_grad():
        # NOTE: PyTorch takes the norm of the per-tensor norms (that is what defines
        # orders 0 and -inf over several tensors), and a NaN anywhere makes the total NaN
        total = _vector_norm([_vector_norm(t._data, norm_type) for t in tensors], norm_type)
    out = tensor(total, dtype=tensors[0].dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite, so it cannot be clipped. To disable "
                           f"this error and scale the gradients by the non-finite norm "
                           f"anyway, set `error_if_nonfinite=False`")
    return out


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    params = _params(parameters)
    coef = float(max_norm) / (float(total_norm) + 1e-6)
    # NOTE: ``not coef >= 1`` rather than ``coef < 1``: a NaN norm scales every gradient by
    # NaN, as PyTorch's ``clamp(coef, max=1)`` does, instead of leaving them unclipped
    if not coef >= 1.0:
        with no_grad():
            for p in params:
                p.grad.mul_(coef)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale the gradients in place so their joint ``norm_type`` norm is at most
    ``max_norm``; returns the total norm before clipping (a tensor).

    >>> import tracegrad as torch
    >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([3.0, 4.0])
    >>> float(torch.nn.utils.clip_grad_norm_([p], 1.0)), [round(v, 3) for v in p.grad.tolist()]
    (5.0, [0.6, 0.8])
    """
    params = _params(parameters)
    if is_tracing() and params and not error_if_nonfinite:
        return _clip_grad_norm_traced(params, float(max_norm), float(norm_type))
    total = get_total_norm([p.grad for p in params], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def _clip_grad_norm_traced(params, max_norm: float, norm_type: float) -> Tensor:
    """The same clip in tensor ops, for a compiled training step: the norm in float64 as
    above, and ``min(coef, 1)`` instead of the branch on ``coef < 1`` (``g * 1.0 == g``;
    a NaN coef stays NaN, as in eager mode)."""
    with no_grad():
        grads = [p.grad for p in params]
        # the norm of the per-tensor norms, as in get_total_norm (orders 0 and -inf)
        total = vector_norm(stack([vector_norm(g.double(), norm_type) for g in grads]),
                            norm_type)
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
        return total.to(grads[0].dtype)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    with no_grad():
        for p in _params(parameters):
            # a tensor op, not NumPy on the storage: it traces inside a compiled step and
            # runs on CUDA tensors
            p.grad.clamp_(-clip_value, clip_value)


def clip_grad_norm(parameters, max_norm, norm_type=2.0):
    import warnings
    warnings.warn("torch.nn.utils.clip_grad_norm is now deprecated in favor of "
                  "torch.nn.utils.clip_grad_norm_.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type)
