"""``tracegrad.compile(module)``: the module's forward compiled, the module itself live.

Parameters are read at every call (the tracer captures them as inputs), so training
the module in place keeps the compiled forward correct.
"""
from __future__ import annotations

import inspect

from ..nn import Module
from .function import CompiledFunction


class OptimizedModule(Module):
    """What ``tracegrad.compile(module)`` returns (PyTorch's name for it): a Module that
    holds the original as its submodule ``_orig_mod``, so that it nests in other modules
    and ``parameters()``/``state_dict()`` reach the original's (keys prefixed
    ``_orig_mod.``, as PyTorch's); other attributes read and write the original's."""

    def __init__(self, module, backend: str = "auto", fullgraph: bool = False,
                 dynamic=None) -> None:
        super().__init__()
        Module.__setattr__(self, "_orig_mod", module)
        d = self.__dict__
        d["_compiled"] = self._compile(module, backend, fullgraph, dynamic)
        # Training and eval modes trace differently (dropout, batch norm): one cache each.
        d["_by_mode"] = {}

    def __call__(self, *args, **kwargs):
        return self._for_mode()(*args, **kwargs)

    def forward(self, *args, **kwargs):
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

    def __len__(self) -> int:
        # as PyTorch's: a compiled nn.Sequential or ModuleList still has a length
        return len(self._orig_mod)

    def __bool__(self) -> bool:
        return True   # a module, whatever its length (``if compiled:`` never calls len)

    def cache_info(self):
        return self._for_mode().cache_info()

    def explain(self, *args, **kwargs):
        return self._for_mode().explain(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return Module.__getattr__(self, name)   # _orig_mod itself
        except AttributeError:
            original = self.__dict__.get("_modules", {}).get("_orig_mod")
            if original is None:   # half-built (copy, unpickling)
                raise
            return getattr(original, name)

    def __setattr__(self, name, value):
        if name == "training":   # train()/eval() set both (Module.train recurses too)
            self.__dict__["training"] = value
        setattr(self._orig_mod, name, value)

    def __reduce__(self):
        # copy.deepcopy and pickle (an EMA copy, torch.save(model)) rebuild it around a
        # copy of the original: compiled programs hold native code and are made again
        c = self._compiled
        return (OptimizedModule, (self._orig_mod, c.backend, c.fullgraph, c.dynamic))

    def __repr__(self) -> str:
        return f"OptimizedModule({self._orig_mod!r})"
