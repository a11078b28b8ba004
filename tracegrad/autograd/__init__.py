"""tracegrad.autograd: reverse-mode differentiation over the recorded graph."""
from . import functional, profiler
from .engine import backward, grad
from .function import Function, FunctionCtx, once_differentiable
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled)
from .variable import Variable

__all__ = ["Function", "FunctionCtx", "once_differentiable", "functional", "profiler",
           "backward", "grad",
           "gradcheck", "gradgradcheck", "GradcheckError", "Variable",
           "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode"]
