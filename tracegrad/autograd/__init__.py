"""tracegrad.autograd: reverse-mode differentiation over the recorded graph.

NOTE (autograd facade): this package spans two floors of the import order (DESIGN.md,
"Layers"): ``node`` and ``grad_mode`` sit below the dispatcher, which imports them, while
``engine``, ``function`` and the rest sit above the primitives. Importing ``node`` runs
this file first, so it loads only ``grad_mode`` and reaches the upper submodules on first
attribute access (PEP 562); ``import tracegrad`` imports them all in order.
"""
from importlib import import_module

from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled)

# public name -> the submodule that defines it
_UPPER = {"backward": "engine", "grad": "engine",
          "Function": "function", "FunctionCtx": "function", "once_differentiable": "function",
          "GradcheckError": "gradcheck", "gradcheck": "gradcheck", "gradgradcheck": "gradcheck",
          "Variable": "variable"}
_SUBMODULES = {"functional", "profiler"}  # public as modules, as in PyTorch

__all__ = ["Function", "FunctionCtx", "once_differentiable", "functional", "profiler",
           "backward", "grad",
           "gradcheck", "gradgradcheck", "GradcheckError", "Variable",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    if name not in _UPPER:
        raise AttributeError(f"module 'tracegrad.autograd' has no attribute {name!r}")
    submodule = _UPPER[name]
    loaded = import_module(f"{__name__}.{submodule}")
    # Bind every name the submodule provides. NOTE: importing the gradcheck submodule binds
    # the module to this package's ``gradcheck``; this rebinds the function (PyTorch's too).
    for public, home in _UPPER.items():
        if home == submodule:
            globals()[public] = getattr(loaded, public)
    return globals()[name]


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _load_all() -> None:
    """Bind every public name now; ``import tracegrad`` calls this once the dispatcher and
    the primitives exist, so the function ``gradcheck`` is bound before anyone imports
    the submodule of the same name (which would otherwise shadow it)."""
    for name in _UPPER:
        __getattr__(name)
