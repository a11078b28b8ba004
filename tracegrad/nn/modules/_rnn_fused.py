"""The recurrent layers' time loop as compiled code in eager mode.

PyTorch runs its RNN cells as fused C++ kernels; here the same role is played by
``tracegrad.compile`` of the step functions in ``_rnn_steps.py``, at two grains:

- a whole sequence (one direction of one layer, up to ``MAX_UNROLL`` steps) as one
  compiled call forward and one compiled backward node: no Python per step at all
  (measured on an LSTM, T=32 N=16 H=128, forward + backward: eager 87 ms, step by step
  56 ms, whole sequence 18 ms; PyTorch's fused layer 13 ms);
- one step (matmul, bias, four gate nonlinearities, the cell update: ~15 eager ops) as
  one call, for sequences too long to unroll or whose length is not yet warm.

Values equal the eager ops' up to float32 reassociation.

NOTE (when to fuse): compiling costs a trace and a JIT (tenths of a second to a second;
the disk cache makes it cheaper the next time), so a signature (mode, direction, shapes
including the length, requires_grad, grad mode) is compiled only once it has proved to
repeat: ``SEQUENCE_WARMUP`` sequences or ``WARMUP`` steps run eagerly with it first. A
one-off call (a test, an inference on one input) stays eager; a training loop fuses from
its third batch. Only float32 on the CPU fuses (float64 users expect NumPy's exact
transcendentals, e.g. for gradcheck), and never inside an outer trace (the outer compile
sees the plain ops and fuses them itself). A signature whose compile fails or falls back
runs eagerly from then on, silently: fusing is an optimisation the user did not ask for,
so it may not change a result or print a warning.
"""
from __future__ import annotations

import os
import threading
import warnings

from ..._dispatch import is_tracing
from ..._ops.shape import stack
from ...autograd import grad_mode
from . import _rnn_steps as S

WARMUP = 24  # steps run eagerly with a step signature before it is compiled
SEQUENCE_WARMUP = 2  # sequences run with a sequence signature before it is compiled
MAX_UNROLL = 64  # longer sequences fuse step by step (an unrolled trace grows with length)
MAX_SIGNATURES = 64  # past this many distinct signatures, new ones stay eager


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


def _sequence(mode: str, reverse: bool):
    """The whole time loop of one direction as one function of (xw, h[, c], weights...):
    returns (output, h) or, for LSTM, (output, h, c)."""
    step = _STEPS[mode]
    lstm = mode == "LSTM"

    def run(xw, h, *rest):
        c, weights = (rest[0], rest[1:]) if lstm else (None, rest)
        steps = xw.unbind(0)
        outs = [None] * len(steps)
        for t in (range(len(steps) - 1, -1, -1) if reverse else range(len(steps))):
            if lstm:
                h, c = step(steps[t], h, c, *weights)
            else:
                h = step(steps[t], h, *weights)
            outs[t] = h
        out = stack(outs, 0)
        return (out, h, c) if lstm else (out, h)
    run.__name__ = f"{mode.lower()}_sequence{'_reverse' if reverse else ''}"
    return run


class _State:
    enabled = os.environ.get("TRACEGRAD_RNN_FUSED", "1") not in ("0", "false", "no")
    seen: dict = {}  # signature -> calls run eagerly so far
    compiled: dict = {}  # signature -> CompiledFunction, or None once it fell back
    lock = threading.Lock()


def set_enabled(flag: bool) -> bool:
    """Turn the fused paths on or off process-wide; returns the previous setting."""
    old, _State.enabled = _State.enabled, bool(flag)
    return old


def clear() -> None:
    """Forget every compiled step and sequence (tests)."""
    with _State.lock:
        _State.seen.clear()
        _State.compiled.clear()


def _eligible(tensors) -> bool:
    if not _State.enabled or is_tracing():
        return False
    for t in tensors:
        if t._device.type != "cpu" or t._data.dtype.str != "<f4":
            return False
    return True


def _compiled_for(key, tensors, warmup: int, make):
    """The CompiledFunction for ``key`` once it has been asked for ``warmup`` times, or
    None (run eagerly). ``make()`` builds the function to compile."""
    if not _eligible(tensors):
        return None
    key = (key, tuple((t._data.shape, bool(t._requires_grad)) for t in tensors),
           grad_mode.is_grad_enabled())
    fn = _State.compiled.get(key)
    if fn is not None or key in _State.compiled:
        return fn
    with _State.lock:
        n = _State.seen.get(key, 0) + 1
        _State.seen[key] = n
        if n <= warmup or len(_State.compiled) >= MAX_SIGNATURES:
            return None
        # NOTE: nn sits below the compiler in the import order; the compiler is reached
        # only here, once a training loop has shown it repeats a signature.
        from ...compiler.function import CompiledFunction
        fn = CompiledFunction(make(), fullgraph=True)
        _State.compiled[key] = fn
        return fn


def step_function(mode: str, tensors: tuple):
    """A compiled step for these arguments (``tensors`` as the step will receive them),
    or None: run the eager step. Counts one step toward the warm-up."""
    return _compiled_for(mode, tensors, WARMUP, lambda: _STEPS[mode])


def sequence_function(mode: str, reverse: bool, tensors: tuple):
    """A compiled time loop for ``(xw, h[, c], weights...)``, or None (run step by step).
    Counts one sequence toward the warm-up."""
    if not 2 <= tensors[0].shape[0] <= MAX_UNROLL:
        return None
    return _compiled_for((mode, reverse), tensors, SEQUENCE_WARMUP,
                         lambda: _sequence(mode, reverse))


def run_compiled(fn, args: tuple):
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
