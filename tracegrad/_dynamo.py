"""``torch._dynamo``'s names that user programs call (``torch._dynamo.mark_dynamic(x, 0)``,
``reset``, ``disable``, ``is_compiling``): tracegrad.compiler's own, under PyTorch's path.
Loaded on first use, like the compiler (NOTE (lazy compiler) in ``__init__.py``)."""
from .compiler.dynamic import mark_dynamic
from .compiler.torch_api import disable, is_compiling, reset

__all__ = ["mark_dynamic", "reset", "disable", "is_compiling"]
