"""``gradcheck``: analytic gradients (the derivative rules) against central finite
differences, element by element, in the inputs' own dtype (use float64)."""
from __future__ import annotations

import warnings

import numpy as np

from .._ops.creation import zeros_like
from .._tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _flat_outputs(fn, inputs):
    out = _as_tuple(fn(*inputs))
    return [o for o in out if isinstance(o, Tensor)]


def numerical_jacobian(fn, inputs, i, eps):
    x = inputs[i]
    data = x._data
    if not data.flags.writeable:
        raise GradcheckError(f"gradcheck: input {i} (shape {tuple(x.shape)}) is a read-only "
                             f"view (e.g. expanded); pass a writeable tensor")
    with no_grad():
        base = _flat_outputs(fn, inputs)
    cols = []
    # NOTE: perturb through a multi-index, not data.reshape(-1): for a non-contiguous input
    # (permuted, negative-step slice) reshape copies and the perturbation would be lost.
    for j in range(data.size):
        idx = np.unravel_index(j, data.shape)
        old = data[idx].copy()
        data[idx] = old + eps
        with no_grad():
            # NOTE: copy: an output that is a view of the input (reshape, slice) would
            # otherwise change under the next perturbation.
            plus = [np.array(o._data, dtype=np.float64).ravel() for o in _flat_outputs(fn, inputs)]
        data[idx] = old - eps
        with no_grad():
            minus = [np.array(o._data, dtype=np.float64).ravel() for o in _flat_outputs(fn, inputs)]
        data[idx] = old
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
                    if plus else np.zeros(0))
    n_out = sum(int(np.prod(o.shape)) for o in base)
    return np.stack(cols, axis=1) if cols else np.zeros((n_out, 0))


def analytical_jacobian(fn, inputs, i):
    outputs = _flat_outputs(fn, inputs)
    x = inputs[i]
    rows = []
    for o in outputs:
        for k in range(o.numel()):
            if not o.requires_grad:
                rows.append(np.zeros(x.numel()))
                continue
            g = zeros_like(o)
            g._data.reshape(-1)[k] = 1
            (gx,) = grad(o, x, grad_outputs=g, retain_graph=True, allow_unused=True)
            rows.append(np.zeros(x.numel()) if gx is None else
                        np.asarray(gx._data, dtype=np.float64).ravel())
    return np.stack(rows) if rows else np.zeros((0, x.numel()))


def gradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **unused) -> bool:
    """True when every input's analytic Jacobian matches finite differences.

    >>> import tracegrad as torch
    >>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(lambda x: (x * x).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        if x._data.dtype != np.float64:
            warnings.warn(f"gradcheck: input {i} is {x.dtype}, not float64; finite differences "
                          f"will be inaccurate", stacklevel=2)
        analytic = analytical_jacobian(fn, inputs, i)
        numeric = numerical_jacobian(fn, inputs, i, eps)
        if analytic.shape != numeric.shape or not np.allclose(analytic, numeric, rtol=rtol, atol=atol):
            if raise_exception:
                worst = np.max(np.abs(analytic - numeric)) if analytic.shape == numeric.shape else None
                raise GradcheckError(
                    f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(x.shape)}), "
                    f"max abs difference {worst}\nnumerical:\n{numeric}\nanalytical:\n{analytic}")
            return False
    return True


def gradgradcheck(fn, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, **unused) -> bool:
    """gradcheck of the first derivative (checks create_graph=True double backward)."""
    inputs = _as_tuple(inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    @enable_grad()
    def first_grads(*xs):
        outs = _flat_outputs(fn, xs)
        total = sum((o * o).sum() * 0.5 for o in outs)
        ins = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        return grad(total, ins, create_graph=True, allow_unused=True, materialize_grads=True)

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception) if diff else True
