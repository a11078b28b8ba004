"""The one dispatcher every primitive goes through (DESIGN.md, "Dispatch").

``apply(prim, inputs, attrs)`` computes the value (NumPy eagerly, or a graph node while a
compile trace is recording) and, when grad mode is on and an input requires grad, links
the output to an autograd ``Node`` that points at the primitive's derivative rule.
"""
from __future__ import annotations

import sys

import numpy as np

from . import _trace_state
from ._untraced import pause as _pause, resume as _resume
from ._cuda_tensor import CUDA0 as _CUDA0, run_eager as run_on_cuda
from ._device import CPU as _CPU
from ._tensor import Tensor, _new_tensor
from .autograd.grad_mode import state as _grad_state
from .autograd.node import Node
from ._errors import ShapeError, describe

_EMPTY: dict = {}
_gettrace = sys.gettrace
_trace_state_of_thread = _trace_state.state
_ndarray = np.ndarray


# NOTE (records untraced): while a compile trace records the reads user code makes through
# Python objects (sys.settrace, compiler/access_paths.py), every frame runs on CPython
# 3.11's tracing path, watched or not. Recording one op is tracegrad's own code and reads
# nothing of the user's, so the trace function is off while it runs: the MLP SGD step's
# trace (best of 40, load ~7) took 3.50 ms recorded vs 1.62 not, and 2.87 vs 1.76 so,
# with half the trace-function calls. The rest of tracegrad's stretches pause it too:
# NOTE (untraced stretches) in _untraced.py.
def apply(prim, inputs: tuple, attrs: dict = _EMPTY):
    args = []
    requires_grad = volatile = on_cuda = False
    for x in inputs:
        if isinstance(x, Tensor):
            args.append(x._data)
            if x._device is not _CPU and x._device.type == "cuda":
                on_cuda = True
            flag = x._requires_grad
            if flag:
                requires_grad = True
            elif flag is None:  # legacy Variable(volatile=True): never record, and spread
                volatile = True
        else:
            args.append(x)
    tracer = _trace_state_of_thread.tracer if _trace_state.active_traces else None
    if tracer is not None:
        if _gettrace() is None:
            data = tracer.record(prim, inputs, args, attrs)
        else:   # NOTE (records untraced)
            token = _pause()
            try:
                data = tracer.record(prim, inputs, args, attrs)
            finally:
                _resume(token)
    elif on_cuda:  # a one-op kernel on the device (tracegrad._cuda_tensor)
        data = run_on_cuda(prim, inputs, args, attrs)
    else:
        try:
            data = prim.eager(*args, **attrs) if attrs else prim.eager(*args)
            if type(data) is not _ndarray:
                data = np.asarray(data)  # NumPy reductions return scalars for 0-d results
        except (ShapeError, IndexError):
            raise
        except RuntimeWarning:
            # NOTE: NumPy's overflow/invalid warnings are silenced by a module filter
            # (_primitives/elementwise.py), which a user's "error" filter (``-W error``,
            # pytest's ``filterwarnings = error``) overrides and turns into exceptions.
            # PyTorch is silent there: compute again with NumPy's checks off (a primitive's
            # eager function is pure), paying np.errstate only on this rare path.
            with np.errstate(all="ignore"):
                data = _eager_value(prim, args, attrs)
        except Exception as e:
            raise op_error(prim, args, attrs, e) from None
    # the body of _tensor._wrap, inlined (the hot path), without its note to the tracer
    out = _new_tensor(Tensor)
    out._data = data
    out._requires_grad = False
    out.grad_fn = None
    out._version = [0]
    if on_cuda:
        out._device = _CUDA0
    if volatile:
        out._requires_grad = None
    elif requires_grad and _grad_state.enabled and prim.vjp is not None:
        out.grad_fn = Node(prim, inputs, attrs, out)
        out._requires_grad = True
    return out


def _eager_value(prim, args, attrs):
    try:
        data = prim.eager(*args, **attrs) if attrs else prim.eager(*args)
    except (ShapeError, IndexError):
        raise
    except Exception as e:
        raise op_error(prim, args, attrs, e) from None
    return data if type(data) is _ndarray else np.asarray(data)


def op_error(prim, args, attrs, cause: Exception) -> Exception:
    """A clear error for a failed primitive: its shape rule's message when the rule
    rejects the inputs, else the operation, the inputs and NumPy's one-line reason."""
    try:
        prim.shape(*args, **attrs)
    except ShapeError as e:
        return e
    except Exception:
        pass
    inputs = ", ".join(describe(a) for a in args)
    return RuntimeError(f"{prim.name}: failed on inputs ({inputs}): "
                        f"{type(cause).__name__}: {cause}")


# ---- the one way the rest of the core asks about tracing (NOTE (trace state)) -------------
is_tracing = _trace_state.is_tracing
rebind_data = _trace_state.rebind_data
made_from_sizes = _trace_state.made_from_sizes
