"""In-place arithmetic refuses a result the written tensor's dtype cannot hold, as
PyTorch does ("result type Float can't be cast to the desired output type Long"), where it
used to truncate silently (``int_tensor *= 2.5`` gave ``[10, 12]`` for ``[4, 5]``); results
that fit (an int64 result into an int32 tensor, anything into a float one) are still cast
and written."""
import numpy as np
import pytest

import tracegrad as tg

REFUSED = [
    # (in-place call, dtype of x)
    (lambda x: x.__iadd__(2.5), "int64"),
    (lambda x: x.__isub__(2.5), "int32"),
    (lambda x: x.__imul__(2.5), "uint8"),
    (lambda x: x.__imul__(tg.tensor([2.5, 1.5])), "int64"),
    (lambda x: x.__iadd__(tg.tensor(2.5)), "int64"),
    (lambda x: x.__itruediv__(2), "int64"),
    (lambda x: x.__ipow__(2.5), "int64"),
    (lambda x: x.__ipow__(tg.tensor([2.5, 1.5])), "int32"),
    (lambda x: x.__imod__(2.5), "int64"),
    (lambda x: x.__iadd__(2), "bool"),
    (lambda x: x.__imul__(tg.tensor([2, 3])), "bool"),
    (lambda x: x.__iand__(1), "bool"),
    (lambda x: x.add_(2.5), "int64"),
    (lambda x: x.sub_(2.5), "int64"),
    (lambda x: x.mul_(2.5), "int64"),
    (lambda x: x.pow_(0.5), "int64"),
    (lambda x: x.sqrt_(), "int64"),
    (lambda x: x.exp_(), "int64"),
    (lambda x: x.sigmoid_(), "int64"),
    (lambda x: x.reciprocal_(), "int64"),
    (lambda x: x.clamp_(0.5, 4.5), "int64"),
    (lambda x: x.lerp_(tg.tensor([1.0, 2.0]), 0.5), "int64"),
    (lambda x: x.addcmul_(tg.tensor([1.5, 1.0]), tg.tensor([1, 1])), "int64"),
    (lambda x: x.float_power_(2), "float32"),
]


@pytest.mark.parametrize("call,dtype", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_a_result_the_tensor_cannot_hold_raises_and_leaves_it_unchanged(call, dtype):
    x = tg.tensor([4, 5], dtype=getattr(tg, dtype))
    before = x.numpy().copy()
    with pytest.raises(RuntimeError, match="can't be cast|must be float64"):
        call(x)
    np.testing.assert_array_equal(x.numpy(), before)


def test_refused_calls_match_torch():
    torch = pytest.importorskip("torch")
    for call, dtype in REFUSED:
        with pytest.raises(RuntimeError):
            # the same call on a torch tensor (operands made by tracegrad become torch's)
            x = torch.tensor([4, 5], dtype=getattr(torch, dtype))
            call(_TorchProxy(x, torch))


class _TorchProxy:
    """``x`` whose methods receive torch tensors where a REFUSED call passes tracegrad's."""

    def __init__(self, x, torch):
        self.x, self.torch = x, torch

    def __getattr__(self, name):
        method = getattr(self.x, name)

        def call(*args):
            return method(*[self.torch.from_numpy(a.numpy().copy()) if isinstance(a, tg.Tensor)
                            else a for a in args])
        return call


@pytest.mark.parametrize("call,dtype,want", [
    (lambda x: x.__iadd__(2), "int32", [6, 7]),
    (lambda x: x.__iadd__(tg.tensor([1, 2])), "int32", [5, 7]),          # int64 into int32
    (lambda x: x.__imul__(tg.tensor([2.5, 1.5], dtype=tg.float64)), "float16", [10.0, 7.5]),
    (lambda x: x.__ifloordiv__(2), "int64", [2, 2]),
    (lambda x: x.div_(2, rounding_mode="floor"), "int64", [2, 2]),
    (lambda x: x.__ior__(tg.tensor([False, True])), "bool", [True, True]),
    (lambda x: x.__iadd__(True), "int64", [5, 6]),
    (lambda x: x.clamp_(0, 4), "int64", [4, 4]),
    (lambda x: x.__itruediv__(2), "float32", [2.0, 2.5]),
])
def test_a_result_that_fits_is_written_in_the_tensors_dtype(call, dtype, want):
    x = tg.tensor([4, 5], dtype=getattr(tg, dtype))
    y = x
    out = call(x)
    assert out is y and x.dtype is getattr(tg, dtype)
    np.testing.assert_array_equal(x.numpy(), np.array(want, dtype=dtype))


def test_the_check_holds_under_autograd_too():
    # a float tensor in the graph next to an int tensor written in place
    w = tg.tensor([1.5, 2.5], requires_grad=True)
    x = tg.tensor([4, 5])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(w)
    y = tg.tensor([1.0, 2.0], requires_grad=True) * 1
    y.add_(tg.tensor([1, 2]))          # an int operand into a float tensor: fine
    y.sum().backward()
