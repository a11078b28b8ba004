"""Every error a user can trigger names the operation and the offending shapes, dtypes
or arguments, and none escapes as a raw NumPy error from deep inside NumPy."""
from __future__ import annotations

import traceback

import numpy as np
import pytest

import tracegrad as torch


def _raise(fn):
    with pytest.raises(Exception) as info:
        fn()
    return info.value, info.tb


def _assert_not_numpy(exc, tb):
    frames = traceback.extract_tb(tb)
    assert not any("/numpy/" in f.filename for f in frames), (
        f"error raised from inside NumPy: {exc!r}\n{''.join(traceback.format_tb(tb))}")


def check(fn, *fragments, kind=Exception):
    exc, tb = _raise(fn)
    assert isinstance(exc, kind), repr(exc)
    msg = str(exc)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    _assert_not_numpy(exc, tb)
    return exc


def test_broadcast_mismatch_names_op_and_shapes():
    a, b = torch.ones(2, 3), torch.ones(4)
    check(lambda: a + b, "add", "(2, 3)", "(4,)")
    check(lambda: a * b, "mul", "(2, 3)", "(4,)")
    check(lambda: a - b, "sub", "(2, 3)", "(4,)")
    check(lambda: a / b, "div", "(2, 3)", "(4,)")
    check(lambda: torch.maximum(a, b), "maximum", "(2, 3)", "(4,)")
    check(lambda: a < b, "lt", "(2, 3)", "(4,)")
    check(lambda: torch.where(a > 0, a, b), "where", "(2, 3)", "(4,)")


def test_matmul_mismatch_names_op_and_shapes():
    check(lambda: torch.ones(2, 3) @ torch.ones(4, 5), "matmul", "(2, 3)", "(4, 5)")
    check(lambda: torch.ones(2, 3).mm(torch.ones(2, 3)), "(2, 3)")
    check(lambda: torch.ones(3).dot(torch.ones(4)), "(3,)", "(4,)")
    check(lambda: torch.ones(2, 3).mv(torch.ones(4)), "(2, 3)", "(4,)")
    check(lambda: torch.bmm(torch.ones(2, 3, 4), torch.ones(3, 4, 5)), "bmm", "(2, 3, 4)", "(3, 4, 5)")
    check(lambda: torch.ones(2, 3, 4) @ torch.ones(5, 4, 2), "matmul", "(2, 3, 4)", "(5, 4, 2)")
    check(lambda: torch.ones(3) @ torch.tensor(2.0), "matmul")


def test_backward_through_freed_graph():
    x = torch.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    check(y.backward, "backward through the graph a second time", "retain_graph=True",
          kind=RuntimeError)


def test_backward_on_non_scalar_without_gradient():
    x = torch.ones(2, 3, requires_grad=True)
    check(lambda: (x * 2).backward(), "scalar outputs", "(2, 3)", kind=RuntimeError)
    check(lambda: (x * 2).backward(torch.ones(3)), "gradient", "(3,)", "(2, 3)", kind=RuntimeError)


def test_backward_on_tensor_without_grad():
    check(lambda: torch.ones(2).sum().backward(), "does not require grad", kind=RuntimeError)


def test_wrong_index():
    t = torch.ones(3, 4)
    check(lambda: t[3], "index 3", "out of bounds", "size 3", kind=IndexError)
    check(lambda: t[0, -5], "index -5", "out of bounds", "size 4", kind=IndexError)
    check(lambda: t[0, 0, 0], "too many indices", "dimension 2", kind=IndexError)
    check(lambda: t[torch.tensor([0, 7])], "index 7", "out of bounds", kind=IndexError)
    check(lambda: t[:, [4]], "index 4", "out of bounds", kind=IndexError)
    check(lambda: t[torch.tensor([True, False])], "mask", "(2,)", "(3,)", kind=IndexError)
    check(lambda: t[torch.tensor([0.5])], "long, int, byte or bool", kind=IndexError)
    check(lambda: t[1.5], "1.5", kind=IndexError)
    check(lambda: t[..., ...], "ellipsis", kind=IndexError)
    check(lambda: torch.tensor(1.0)[1], "too many indices", kind=IndexError)


def test_wrong_index_on_setitem():
    t = torch.zeros(3, 4)

    def set_(key, value):
        def fn():
            t[key] = value
        return fn
    check(set_(5, 1.0), "index 5", "out of bounds", kind=IndexError)
    check(set_((0, 0, 0), 1.0), "too many indices", kind=IndexError)
    check(set_(0, torch.ones(5)), "(5,)", "(3, 4)")


def test_int_tensor_requiring_grad():
    check(lambda: torch.tensor([1, 2], requires_grad=True), "floating point", "int64",
          kind=RuntimeError)
    check(lambda: torch.zeros(2, dtype=torch.int32).requires_grad_(), "floating point", "int32",
          kind=RuntimeError)
    check(lambda: torch.ones(2, dtype=torch.bool).requires_grad_(), "floating point", "bool",
          kind=RuntimeError)


def test_dim_out_of_range():
    t = torch.ones(2, 3)
    for fn, name in ((lambda: t.sum(2), "sum"), (lambda: t.max(dim=-3), "max"),
                     (lambda: t.transpose(0, 2), "transpose"), (lambda: t.softmax(5), ""),
                     (lambda: t.unsqueeze(4), "unsqueeze"), (lambda: t.cumsum(3), "cumsum"),
                     (lambda: t.size(2), "size"), (lambda: t.flip(2), "flip")):
        check(fn, name, "out of range", kind=IndexError)


def test_shape_errors_name_the_op():
    t = torch.ones(2, 3)
    check(lambda: t.view(4), "reshape", "[4]", "(2, 3)")
    check(lambda: t.reshape(4, -1), "[4, -1]", "6")
    check(lambda: t.view(-1, -1), "only one dimension can be inferred")
    check(lambda: t.expand(4, 4), "expand", "(2, 3)", "(4, 4)")
    check(lambda: t.permute(0, 0), "permute")
    check(lambda: t.permute(0), "permute")
    check(lambda: torch.cat([t, torch.ones(3, 2)]), "cat", "(2, 3)", "(3, 2)")
    check(lambda: torch.stack([t, torch.ones(3)]), "stack")
    check(lambda: t.repeat(2), "repeat")
    check(lambda: t.narrow(1, 2, 2), "narrow")
    check(lambda: t.split([1, 2]), "split")
    check(lambda: t.gather(1, torch.tensor([[5]])), "gather", "5", kind=IndexError)
    check(lambda: t.gather(1, torch.tensor([0])), "gather", "rank")
    check(lambda: torch.ones(0).max(), "max", "empty")
    check(lambda: torch.pad(t, (1,)), "pad")
    check(lambda: t.item(), "item", "6 elements")
    check(lambda: t.chunk(0), "chunk")


def test_inplace_errors():
    t = torch.ones(2, 3)
    check(lambda: t.add_(torch.ones(4)), "add_", "(4,)", "(2, 3)")
    check(lambda: t.copy_(torch.ones(4)), "copy_", "(4,)", "(2, 3)")
    x = torch.ones(2, requires_grad=True)
    check(lambda: x.mul_(2), "leaf", "requires grad", kind=RuntimeError)
    check(lambda: x.numpy(), "detach", kind=RuntimeError)


def test_type_errors():
    t = torch.ones(2)
    check(lambda: t + "a", "add", "str", kind=TypeError)
    check(lambda: torch.ones(2, dtype="complex"), "dtype")
    check(lambda: torch.tensor(["a"]), "dtype")
    check(lambda: torch.randn(2, dtype=torch.int64), "floating point", kind=TypeError)
    check(lambda: torch.from_numpy([1, 2]), "from_numpy", kind=TypeError)
    check(lambda: torch.from_numpy(np.array([1 + 2j])), "complex")


def test_bool_of_multi_element_tensor():
    check(lambda: bool(torch.ones(2)), "ambiguous", kind=RuntimeError)


def test_no_raw_numpy_errors_from_many_bad_calls():
    """A sweep of bad calls: each raises a tracegrad error, not one from inside NumPy."""
    t = torch.ones(2, 3)
    bad = [lambda: t @ torch.ones(2), lambda: t.reshape(5), lambda: t.sum((0, 5)),
           lambda: t.index_select(0, torch.tensor([9])), lambda: t.masked_fill(torch.ones(4) > 0, 1),
           lambda: t.scatter_add(0, torch.tensor([[9, 0, 0]]), torch.ones(1, 3)),
           lambda: torch.where(torch.ones(4) > 0, t, t), lambda: t.squeeze(3), lambda: t.mean(dim=4),
           lambda: t.argmax(dim=2), lambda: torch.ones(0, 3).argmax(), lambda: t.var(dim=7)]
    for fn in bad:
        exc, tb = _raise(fn)
        _assert_not_numpy(exc, tb)
