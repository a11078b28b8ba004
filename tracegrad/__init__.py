"""tracegrad: PyTorch-style tensors and autograd on NumPy, with an optional ``@compile``
that fuses a function's operations into generated LLVM (CPU) or CUDA kernels.

>>> import tracegrad as torch
>>> x = torch.ones(2, 2, requires_grad=True)
>>> y = (x * 3).sum()
>>> y.backward()
>>> x.grad
tensor([[3., 3.],
        [3., 3.]])
"""

import builtins as _builtins

from . import _dtype
from ._device import device
from ._dtype import (bool_ as bool, dtype, float16, float32, float64, get_default_dtype,  # noqa: A001
                     int8, int16, int32, int64, set_default_dtype, uint8)
from ._random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed,
                      seed, set_rng_state)
from ._size import Size
from ._tensor import Tensor
from ._ops import methods as _methods
from ._ops.creation import *  # noqa: F401,F403
from ._ops.math import *  # noqa: F401,F403
from ._ops.division import *  # noqa: F401,F403
from ._ops.reduce import *  # noqa: F401,F403
from ._ops.shape import *  # noqa: F401,F403
from ._ops.indexing import *  # noqa: F401,F403
from ._ops.linalg import *  # noqa: F401,F403
from ._ops.trig import *  # noqa: F401,F403
from ._ops.matrix import *  # noqa: F401,F403
from ._ops.unique import *  # noqa: F401,F403
from ._ops.strided import *  # noqa: F401,F403
from ._ops.aliases import *  # noqa: F401,F403
from ._ops.elementwise_extra import *  # noqa: F401,F403
from ._ops.special_eager import *  # noqa: F401,F403
from ._ops.index_writes import *  # noqa: F401,F403
from ._ops.products import *  # noqa: F401,F403
from ._ops.sampling import *  # noqa: F401,F403
from ._ops.sorting import *  # noqa: F401,F403
from ._ops.searching import *  # noqa: F401,F403
from ._ops.cumulative import *  # noqa: F401,F403
from ._ops.pointwise import *  # noqa: F401,F403
from ._ops.rearrange import *  # noqa: F401,F403
from ._ops.dtype_queries import *  # noqa: F401,F403
from ._ops.broadcasting import *  # noqa: F401,F403
from ._ops.math import add, clamp, clip, sub, where  # noqa: F401
from ._primitives import ShapeError  # noqa: F401
from . import accelerator, autograd, cuda, legacy
autograd._load_all()  # NOTE (autograd facade)
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .legacy import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor,  # noqa: F401
                     HalfTensor, IntTensor, LongTensor, ShortTensor)

_methods.install()

# PyTorch's aliases
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
abs = _methods.math.abs  # noqa: A001
max = _methods.reduce.max  # noqa: A001
min = _methods.reduce.min  # noqa: A001
sum = _methods.reduce.sum  # noqa: A001
all = _methods.reduce.all  # noqa: A001
any = _methods.reduce.any  # noqa: A001
round = _methods.math.round  # noqa: A001
pow = _methods.math.pow  # noqa: A001
sigmoid = _methods.math.sigmoid
relu = _methods.math.relu
softmax = _methods.reduce.softmax
log_softmax = _methods.reduce.log_softmax
t = _methods.shape.t
numel = Tensor.numel
is_tensor = lambda obj: isinstance(obj, Tensor)  # noqa: E731
is_floating_point = Tensor.is_floating_point
equal = _methods.METHODS["equal"]
allclose = _methods.METHODS["allclose"]
addcmul = _methods.METHODS["addcmul"]
addcdiv = _methods.METHODS["addcdiv"]


def get_num_threads() -> _builtins.int:
    """Threads that compiled kernels split their work across."""
    from .runtime.llvm_jit import n_threads
    return n_threads()


def set_num_threads(n) -> None:
    """Use at most ``n`` threads in compiled kernels and in NumPy's OpenBLAS (matmul)."""
    from .runtime.blas_threads import set_blas_threads
    from .runtime.llvm_jit import set_n_threads
    set_n_threads(n)
    set_blas_threads(n)


__version__ = "0.1.0"

# Imported last: they build on everything above.
from .serialization import load, save  # noqa: E402,F401
from . import nn, onnx, optim, serialization, utils  # noqa: E402,F401
from . import linalg  # noqa: E402
from .linalg._torch_names import (cholesky, det, inverse, logdet, matrix_power,  # noqa: E402,F401
                                  pinverse, qr, slogdet, svd)
from .linalg import _torch_names as _linalg_names  # noqa: E402

_linalg_names.install_methods()

# PyTorch's keyword names, out= and clear errors for unsupported arguments, on every public
# function and Tensor method PyTorch also has (tracegrad/_ops/pytorch_args.py).
from ._ops import pytorch_args as _pytorch_args  # noqa: E402
from ._ops.pytorch_signatures import SIGNATURES as _SIGNATURES  # noqa: E402

_pytorch_args.adapt_namespace(globals(), [k[6:] for k in _SIGNATURES if k.startswith("torch.")
                                          and k[6:] not in ("compile", "load", "save")])
_pytorch_args.adapt_methods(Tensor, [k[7:] for k in _SIGNATURES if k.startswith("Tensor.")])

def __getattr__(name: str):
    # NOTE (lazy compiler): ``tracegrad.compile`` and ``tracegrad.compiler`` load the
    # compiler, codegen, the LLVM runtime and llvmlite on first use, so ``import tracegrad``
    # stays cheap for the many scripts that never compile (PEP 562).
    if name in ("compile", "compiler"):
        from .compiler import function
        globals()["compile"] = function.compile
        globals()["compiler"] = __import__(__name__ + ".compiler", fromlist=["function"])
        return globals()[name]
    if name == "_dynamo":   # torch._dynamo.mark_dynamic and friends, loaded on first use
        globals()["_dynamo"] = __import__(__name__ + "._dynamo", fromlist=["reset"])
        return globals()["_dynamo"]
    raise AttributeError(f"module 'tracegrad' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | {"compile", "compiler"})
