"""PyTorch's helpers around ``torch.compile`` that user programs call: ``reset``,
``disable``, ``is_compiling`` (``torch.compiler.*`` and ``torch._dynamo.*``), and the
checks that map ``compile``'s PyTorch arguments (``mode=``, ``backend=``) onto tracegrad's.
"""
from __future__ import annotations

import functools
import weakref

from .._dispatch import is_tracing
from .errors import TraceError

# every CompiledFunction alive, so that reset() reaches them all
LIVE: weakref.WeakSet = weakref.WeakSet()

# PyTorch's modes tune its Inductor backend; tracegrad has one way to compile, so each
# valid mode compiles the same program. An unknown one raises as PyTorch does.
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# PyTorch's backend names that mean what one of tracegrad's does: Inductor is PyTorch's
# generating compiler (tracegrad's "auto"), aot_eager traces and runs the ops eagerly.
TORCH_BACKENDS = {"inductor": "auto", "aot_eager": "eager"}


def check_mode(mode, options) -> None:
    """``compile(mode=..., options=...)`` as PyTorch checks them."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be "
                           "specified at the same time.")
    if mode is not None and mode not in MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(MODES)}")


def backend_name(backend, own: tuple) -> str:
    """tracegrad's backend for ``compile(backend=...)``; a TorchDynamo backend function
    (a callable taking an FX graph) has no meaning here and raises."""
    if backend is None:
        return "auto"
    if callable(backend):
        raise NotImplementedError(f"compile: backend={backend!r} is a custom TorchDynamo "
                                  f"backend (a function of an FX graph), which tracegrad "
                                  f"does not have; pass one of {own}")
    backend = TORCH_BACKENDS.get(backend, backend)
    if backend not in own:
        raise ValueError(f"compile: unknown backend {backend!r}; expected one of {own} "
                         f"(or PyTorch's {tuple(TORCH_BACKENDS)})")
    return backend


def reset() -> None:
    """Forget the programs of every compiled function (``torch.compiler.reset()``): the
    next call of each traces and compiles again (the on-disk kernel cache stays).

    >>> import tracegrad as torch
    >>> torch.compiler.reset()
    """
    for compiled in list(LIVE):
        compiled.cache_clear()


def is_compiling() -> bool:
    """True while a compiled function is being traced (``torch.compiler.is_compiling``).

    >>> import tracegrad as torch
    >>> torch.compiler.is_compiling()
    False
    """
    return is_tracing()


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """Run ``fn`` eagerly, never traced (``torch.compiler.disable``). Called inside a
    compiled function, it stops the trace: tracegrad cannot split a program around it, so
    that function runs eagerly with a warning naming the line (or, with
    ``fullgraph=True``, raises), as PyTorch's graph break does.

    >>> import tracegrad as torch
    >>> @torch.compiler.disable
    ... def log_stats(x):
    ...     return float(x.mean())
    >>> log_stats(torch.ones(3))
    1.0
    """
    if fn is None:
        return lambda f: disable(f, recursive, reason=reason)

    @functools.wraps(fn)
    def eager_only(*args, **kwargs):
        if is_tracing():
            why = f" ({reason})" if reason else ""
            raise TraceError(f"{getattr(fn, '__name__', fn)!s} is marked "
                             f"torch.compiler.disable{why}")
        return fn(*args, **kwargs)
    return eager_only
