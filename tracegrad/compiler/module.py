"""``tracegrad.compile(module)``: the module's forward compiled, the module itself live.

Parameters are read at every call (the tracer captures them as inputs), so training
the module in place keeps the compiled forward correct.
"""
from __future__ import annotations

import inspect

from .function import CompiledFunction


class OptimizedModule:
    """What ``tracegrad.compile(module)`` returns (PyTorch's name for it)."""

    def __init__(self, module, backend: str = "auto", fullgraph: bool = False,
                 dynamic=None) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled", self._compile(module, backend, fullgraph, dynamic))
        # Training and eval modes trace differently (dropout, batch norm): one cache each.
        object.__setattr__(self, "_by_mode", {})

    def __call__(self, *args, **kwargs):
        return self._for_mode()(*args, **kwargs)

    def _for_mode(self) -> CompiledFunction:
        mode = self._orig_mod.training
        fn = self._by_mode.get(mode)
        if fn is None:
            fn = self._by_mode[mode] = self._compile(self._orig_mod, self._compiled.backend,
                                                     self._compiled.fullgraph,
                                                     self._compiled.dynamic)
        return fn

    @staticmethod
    def _compile(module, backend: str, fullgraph: bool, dynamic) -> CompiledFunction:
        # the module's call without the compiled one that Module.compile() installs
        fn = CompiledFunction(module._call_impl, backend=backend, fullgraph=fullgraph,
                              dynamic=dynamic)
        fn.__name__ = type(module).__name__  # warnings, explain() and dumps name the module
        # ``__call__`` takes (*args, **kwargs): check a call's arity against forward's
        try:
            fn._sig = inspect.signature(module.forward)
        except (TypeError, ValueError, AttributeError):
            pass
        return fn

    def cache_info(self):
        return self._for_mode().cache_info()

    def explain(self, *args, **kwargs):
        return self._for_mode().explain(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._orig_mod, name)

    def __setattr__(self, name, value):
        setattr(self._orig_mod, name, value)

    def __repr__(self) -> str:
        return f"OptimizedModule({self._orig_mod!r})"
