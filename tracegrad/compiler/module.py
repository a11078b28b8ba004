"""``tracegrad.compile(module)``: the module's forward compiled, the module itself live.

Parameters are read at every call (the tracer captures them as inputs), so training
the module in place keeps the compiled forward correct.
"""
from __future__ import annotations

from .function import CompiledFunction


class CompiledModule:
    def __init__(self, module, backend: str = "auto", fullgraph: bool = False) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled", CompiledFunction(
            module.__call__, backend=backend, fullgraph=fullgraph))
        # Training and eval modes trace differently (dropout, batch norm): one cache each.
        object.__setattr__(self, "_by_mode", {})

    def __call__(self, *args, **kwargs):
        return self._for_mode()(*args, **kwargs)

    def _for_mode(self) -> CompiledFunction:
        mode = self._orig_mod.training
        fn = self._by_mode.get(mode)
        if fn is None:
            fn = self._by_mode[mode] = CompiledFunction(
                self._orig_mod.__call__, backend=self._compiled.backend,
                fullgraph=self._compiled.fullgraph)
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
        return f"CompiledModule({self._orig_mod!r})"
