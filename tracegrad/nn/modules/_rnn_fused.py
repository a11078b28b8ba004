"""The recurrent layers' time step as one compiled kernel call in eager mode.

PyTorch runs its RNN cells as fused C++ kernels; here the same role is played by
``tracegrad.compile`` of the step function in ``_rnn_steps.py``: the ~15 eager ops of an
LSTM step (matmul, bias add, four gate nonlinearities, the cell update) become one call
forward and one compiled backward node, with the same values up to float32 reassociation.

NOTE (when to fuse): compiling costs a trace and a JIT (tenths of a second; the disk cache
makes it cheaper the next time), so a step signature (mode, shapes, requires_grad, grad
mode) is compiled only once ``WARMUP`` steps have run eagerly with it: a one-off call (a
test, an inference on a short input) stays eager, a training loop fuses from about its
second sequence. Only float32 on the CPU fuses (float64 users expect NumPy's
exact transcendentals, e.g. for gradcheck), and never inside an outer trace (the outer
compile sees the plain ops and fuses them itself). A signature whose compile fails or
falls back runs eagerly from then on, silently: fusing is an optimisation the user did
not ask for, so it may not change a result or print a warning.
"""
from __future__ import annotations

import os
import threading
import warnings

from ... import _trace_state
from ...autograd import grad_mode
from . import _rnn_steps as S

WARMUP = 24  # steps run eagerly with a signature before it is compiled
MAX_SIGNATURES = 64  # past this many distinct step signatures, new ones stay eager


def _lstm(xw, h, c, w_hh):
    return S.lstm_step(xw, h, c, w_hh, None)


def _gru(xw, h, w_hh, b_hh):
    return S.gru_step(xw, h, w_hh, b_hh)


def _gru_no_bias(xw, h, w_hh):
    return S.gru_step(xw, h, w_hh, None)


def _rnn_tanh(xw, h, w_hh):
    return S.rnn_step(xw, h, w_hh, None, False)


def _rnn_relu(xw, h, w_hh):
    return S.rnn_step(xw, h, w_hh, None, True)


_STEPS = {"LSTM": _lstm, "GRU": _gru, "GRU_NO_BIAS": _gru_no_bias, "RNN_TANH": _rnn_tanh,
          "RNN_RELU": _rnn_relu}


class _State:
    enabled = os.environ.get("TRACEGRAD_RNN_FUSED", "1") not in ("0", "false", "no")
    seen: dict = {}  # signature -> sequences run eagerly so far
    compiled: dict = {}  # signature -> CompiledFunction, or None once it fell back
    lock = threading.Lock()


def set_enabled(flag: bool) -> bool:
    """Turn the fused step on or off process-wide; returns the previous setting."""
    old, _State.enabled = _State.enabled, bool(flag)
    return old


def clear() -> None:
    """Forget every compiled step (tests; a fresh start after changing thresholds)."""
    with _State.lock:
        _State.seen.clear()
        _State.compiled.clear()


def _eligible(tensors) -> bool:
    if not _State.enabled or _trace_state.current is not None:
        return False
    for t in tensors:
        if t._device.type != "cpu" or t._data.dtype.str != "<f4":
            return False
    return True


def step_function(mode: str, tensors: tuple):
    """A compiled step for these arguments (``tensors`` as the step will receive them),
    or None: run the eager step. Counts one step toward the warm-up."""
    if not _eligible(tensors):
        return None
    key = (mode, tuple((t._data.shape, bool(t._requires_grad)) for t in tensors),
           grad_mode.is_grad_enabled())
    fn = _State.compiled.get(key)
    if fn is not None or key in _State.compiled:
        return fn
    with _State.lock:
        n = _State.seen.get(key, 0) + 1
        _State.seen[key] = n
        if n <= WARMUP or len(_State.compiled) >= MAX_SIGNATURES:
            return None
        # NOTE: nn sits below the compiler in the import order; the compiler is reached
        # only here, once a training loop has shown it repeats a signature.
        from ...compiler.function import CompiledFunction
        fn = CompiledFunction(_STEPS[mode], fullgraph=True)
        _State.compiled[key] = fn
        return fn


def run_compiled(mode: str, fn, args: tuple):
    """Call a compiled step; on any failure mark its signature eager and return None, so
    the caller runs the eager step for this and every later call."""
    try:
        if fn.hits + fn.misses == 0:  # the call that traces and compiles
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args)
        return fn(*args)
    except Exception:  # noqa: BLE001 - fusing must never change the answer or raise
        with _State.lock:
            for key, value in _State.compiled.items():
                if value is fn:
                    _State.compiled[key] = None
        return None
