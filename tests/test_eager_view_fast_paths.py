"""The eager fast paths of the view ops (NOTE (eager view fast paths) in
tracegrad/_ops/eager_views.py) against the general path they stand in for, and against
PyTorch where it is installed: values, layout, the view record (base, version counter, the
chain of view ops), autograd nodes and gradients, writes through the view, and the errors
of the keys just outside what the fast path takes."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad
from tracegrad._ops import eager_views, indexing, shape

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

GETITEM_KEYS = [0, -1, 2, (1,), (slice(None), 0), (slice(None), -2), (0, 0), (-1, 1),
                slice(1, None), slice(None, None, 2), slice(-2, None), slice(5, 9),
                (Ellipsis, None), (None, 0), None, (Ellipsis, 0), (0, Ellipsis),
                (slice(None), None, 1), (Ellipsis,), slice(None), (slice(0, 9), slice(None)),
                (1, slice(None, None, -1))]
VIEW_OPS = {
    "t": lambda x: x.t(), "T": lambda x: x.T, "permute": lambda x: x.permute(1, 0),
    "permute neg": lambda x: x.permute(-1, -2), "transpose": lambda x: x.transpose(0, 1),
    "transpose neg": lambda x: x.transpose(-1, 0), "transpose same": lambda x: x.transpose(1, -1),
    "transpose 3-d": lambda x: x.view(3, 2, 2).transpose(2, 0),
    "view -1": lambda x: x.view(-1), "view 4,3": lambda x: x.view(4, 3),
    "view tuple": lambda x: x.view((2, 6)), "reshape": lambda x: x.reshape(6, 2),
    "reshape -1": lambda x: x.reshape(-1), "unsqueeze 0": lambda x: x.unsqueeze(0),
    "unsqueeze -1": lambda x: x.unsqueeze(-1), "squeeze": lambda x: x.unsqueeze(1).squeeze(),
    "squeeze 1": lambda x: x.unsqueeze(1).squeeze(1), "squeeze -2": lambda x: x.unsqueeze(1).squeeze(-2),
    "squeeze non-unit": lambda x: x.squeeze(0), "squeeze dims": lambda x: x[None].squeeze((0, 1)), "expand": lambda x: x[:, None].expand(3, 2, 4),
    "expand new dims": lambda x: x.expand(2, 3, 4), "narrow": lambda x: x.narrow(1, 1, 2),
    "narrow neg": lambda x: x.narrow(0, -2, 2), "select": lambda x: x.select(1, -1),
    "select 0": lambda x: x.select(0, 1), "flatten": lambda x: x.flatten(),
    # an int on a size-1 dim slices nothing: the general path records no SLICE for it
    "int on unit dim": lambda x: x.view(3, 1, 4)[:, 0], "unit dim first": lambda x: x.view(1, 3, 4)[0],
    "ints on unit dims": lambda x: x.view(3, 1, 4, 1)[1:, 0, ::2, -1],
}


def _bases(lib, requires_grad: bool):
    """Named (3, 4) tensors: contiguous, a non-contiguous one, a view of a view, a non-leaf."""
    x = lib.arange(12.0).reshape(3, 4)
    if requires_grad:
        x.requires_grad_(True)
    return {"contiguous": x, "transposed": (x * 1).t().t().contiguous().t().t(),
            "column slice": (x * 1)[:, ::1], "view of view": (x * 1).view(4, 3).view(3, 4),
            "non-leaf": x * 2}


@pytest.fixture
def general_path(monkeypatch):
    """Within the test, every view op takes its general path."""
    def use_general():
        for module in (eager_views, indexing, shape):
            monkeypatch.setattr(module, "plain_eager", lambda x: False)
    return use_general


def _record(base, y):
    """What a view op must give the same on both paths."""
    view = y._view
    chain = None if view is None else [(op.__name__, args) for op, args in view[1]]
    nodes = []
    fn = y.grad_fn
    while fn is not None:
        nodes.append((fn.name(), fn.prim.name, fn.attrs))
        fn = fn.next_functions[0][0] if fn.next_functions else None
        if fn is not None and not hasattr(fn, "prim"):
            break   # AccumulateGrad
    return {"values": y.detach().numpy().tolist(), "shape": tuple(y.shape),
            "stride": y.stride(), "is base": y is base, "chain": chain,
            "root is base's root": view is not None and view[0] is (base._view or (base,))[0],
            "shares version": y._version is base._version, "requires_grad": y.requires_grad,
            "nodes": nodes, "no_grad_view": y._no_grad_view}


def _both(fn, requires_grad, general_path, grad_mode=True):
    fast = {}
    for name, base in _bases(tracegrad, requires_grad).items():
        with tracegrad.set_grad_enabled(grad_mode):
            fast[name] = _record(base, fn(base))
    general_path()
    general = {}
    for name, base in _bases(tracegrad, requires_grad).items():
        with tracegrad.set_grad_enabled(grad_mode):
            general[name] = _record(base, fn(base))
    return fast, general


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("key", GETITEM_KEYS, ids=repr)
def test_getitem_fast_path_is_the_general_path(key, requires_grad, general_path):
    fast, general = _both(lambda x: x[key], requires_grad, general_path)
    assert fast == general


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name", sorted(VIEW_OPS))
def test_view_op_fast_path_is_the_general_path(name, requires_grad, general_path):
    fast, general = _both(VIEW_OPS[name], requires_grad, general_path)
    assert fast == general


@pytest.mark.parametrize("name", ["t", "select", "expand", "view -1"])
def test_views_made_under_no_grad_match(name, general_path):
    fast, general = _both(VIEW_OPS[name], True, general_path, grad_mode=False)
    assert fast == general
    assert fast["non-leaf"]["no_grad_view"]


def _grads(lib, fn):
    x = lib.arange(12.0, dtype=lib.float64).reshape(3, 4).requires_grad_(True)
    y = fn(x)
    w = lib.arange(1.0, 1.0 + y.numel(), dtype=lib.float64).reshape(tuple(y.shape))
    (y * w).sum().backward()
    return x.grad.numpy().tolist()


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("key", [k for k in GETITEM_KEYS if not (
    isinstance(k, tuple) and any(isinstance(s, slice) and (s.step or 1) < 0 for s in k))], ids=repr)
def test_getitem_values_and_gradients_match_torch(key):
    x, tx = tracegrad.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4)
    assert np.array_equal(x[key].numpy(), tx[key].numpy())
    assert _strides(x[key]) == _strides(tx[key])
    assert _grads(tracegrad, lambda t: t[key]) == _grads(torch, lambda t: t[key])


def _strides(t) -> tuple:
    """Strides of the dims of size > 1 (NumPy's reshape, under the general path too, picks
    its own stride for a size-1 dim; no element's address depends on it)."""
    return tuple(s for s, n in zip(t.stride(), t.shape) if n > 1)


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("name", sorted(VIEW_OPS))
def test_view_op_values_and_gradients_match_torch(name):
    fn = VIEW_OPS[name]
    y, ty = fn(tracegrad.arange(12.0).reshape(3, 4)), fn(torch.arange(12.0).reshape(3, 4))
    assert np.array_equal(y.numpy(), ty.numpy())
    assert _strides(y) == _strides(ty)
    assert _grads(tracegrad, fn) == _grads(torch, fn)


@pytest.mark.parametrize("make", [lambda x: x[1], lambda x: x[:, 2], lambda x: x[..., None],
                                  lambda x: x.t(), lambda x: x.view(-1), lambda x: x.narrow(1, 1, 2),
                                  lambda x: x.select(0, 2), lambda x: x[1:].t()[0],
                                  lambda x: x.unsqueeze(0)[0, 1:]])
def test_a_write_through_a_fast_view_reaches_the_base_and_bumps_its_version(make):
    x = tracegrad.arange(12.0).reshape(3, 4)
    expected = x.numpy().copy()
    y = make(x)
    before = x._version[0]
    y.add_(100)
    ref = np.arange(12.0).reshape(3, 4)
    np_view = make(_NumpyLike(ref)).a
    np_view += 100
    assert np.array_equal(x.numpy(), ref) and not np.array_equal(x.numpy(), expected)
    assert x._version[0] == y._version[0] == before + 1


def test_a_write_through_a_fast_view_rewrites_the_history_of_a_non_leaf():
    a = tracegrad.arange(12.0, dtype=tracegrad.float64).reshape(3, 4).requires_grad_(True)
    x = a * 1
    row, col = x[1], x[:, 2]
    row.mul_(3)   # col shares x[1, 2], written through row
    assert col._version[0] == x._version[0] == 1
    col.sum().backward()
    expected = np.zeros((3, 4))
    expected[:, 2] = 1
    expected[1, 2] = 3
    assert np.array_equal(a.grad.numpy(), expected)


def test_a_view_of_a_root_that_later_requires_grad_follows_it():
    x = tracegrad.zeros(3, 4)
    row = x[0]
    w = tracegrad.ones(4, requires_grad=True)
    x[0] = w   # x now requires grad: so does its view
    assert row.requires_grad
    row.sum().backward()
    assert np.array_equal(w.grad.numpy(), np.ones(4))


class _NumpyLike:
    """Runs a view op's lambda on a NumPy array (for the expected write)."""

    def __init__(self, a):
        self.a = a

    def __getitem__(self, key):
        return _NumpyLike(self.a[key])

    def t(self):
        return _NumpyLike(self.a.T)

    def view(self, *shape):
        return _NumpyLike(self.a.reshape(shape))

    def narrow(self, dim, start, length):
        return _NumpyLike(self.a[(slice(None),) * dim + (slice(start, start + length),)])

    def select(self, dim, i):
        return _NumpyLike(self.a[(slice(None),) * dim + (i,)])

    def unsqueeze(self, dim):
        return _NumpyLike(np.expand_dims(self.a, dim))


@pytest.mark.parametrize("key", [3, -4, (0, 4), (0, -5), (slice(None), 7)], ids=repr)
def test_an_out_of_range_int_raises_index_error_naming_dim_and_size(key):
    x = tracegrad.zeros(3, 4)
    with pytest.raises(IndexError, match=r"out of bounds for dimension \d with size \d"):
        x[key]


def test_too_many_indices_and_two_ellipses_raise_as_on_the_general_path():
    x = tracegrad.zeros(3, 4)
    with pytest.raises(IndexError, match=r"too many indices.*\(3, 4\)"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(ValueError, match="step cannot be zero"):
        x[::0]


@pytest.mark.parametrize("key", [True, False, np.int64(1), np.int32(-1), "tensor0d",
                                 (np.int64(0), slice(None)), [0, 2]], ids=repr)
def test_keys_outside_the_fast_path_give_torch_values(key):
    x = tracegrad.arange(12.0).reshape(3, 4)
    ref = np.arange(12.0).reshape(3, 4)
    if isinstance(key, str):
        key, ref_key = tracegrad.tensor(1), 1
    else:
        ref_key = key
    assert np.array_equal(x[key].numpy(), ref[ref_key])


def test_fast_path_errors_name_the_op_and_shapes():
    x = tracegrad.zeros(3, 4)
    with pytest.raises(Exception, match=r"(?s)view.*\(4, 3\)"):
        x.t().view(-1)
    with pytest.raises(Exception, match="reshape"):
        x.reshape(5)
    with pytest.raises(Exception, match="permute"):
        x.permute(0, 0)
    with pytest.raises(Exception, match=r"expand.*\(3, 4\)"):
        x.expand(2, 3, 5)
    with pytest.raises(IndexError, match="narrow"):
        x.narrow(1, 3, 2)
    with pytest.raises(IndexError, match="select"):
        x.select(0, 3)
    with pytest.raises(IndexError, match=r"squeeze: dimension out of range.*got 2"):
        x.squeeze(2)
    with pytest.raises(IndexError, match=r"transpose: dimension out of range.*got -3"):
        x.transpose(-3, 0)


def test_a_legacy_volatile_tensor_keeps_its_flag_through_views():
    x = tracegrad.autograd.Variable(tracegrad.zeros(3, 4), volatile=True)
    for y in (x[0], x.t(), x.view(-1), x.expand(2, 3, 4)):
        assert y.volatile


def _mixed_views(x):
    return x[1] * 2 + x.t()[:, 0] + x.reshape(-1)[:4] + x.expand(2, 3, 4)[1, 0] + x[..., None][2, :, 0]


def test_views_made_while_a_compile_trace_records_are_the_traced_ones():
    compiled = tracegrad.compile(_mixed_views)
    for x in (tracegrad.arange(12.0).reshape(3, 4), tracegrad.arange(12.0).reshape(4, 3).t()):
        assert np.array_equal(compiled(x).numpy(), _mixed_views(x).numpy())


SETITEM_CASES = [(1, "row"), (-1, "row"), ((0, 2), 7.5), ((0, 2), 7), (slice(1, None), "col"),
                 ((Ellipsis, 1), "col"), ((slice(None), None, 2), 2 ** 60), (None, "row"),
                 ((1, slice(None, None, 2)), -1.5), (0, 1e40), (0, True), (0, "int row"),
                 (5, "row"), ((0, 0, 0), 1.0), (0, "bad row"), ("mask", 3.0), ("tensor0d", 2.0)]


def _setitem_case(lib, dtype, key, value, make_base=lambda x: x):
    x = make_base(lib.arange(12.0, dtype=dtype).reshape(3, 4))
    alias = x.view(-1) if x.is_contiguous() else x[:]
    if key == "mask":
        key = x > 5
    elif key == "tensor0d":
        key = lib.tensor(1)
    values = {"row": lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=dtype), "col": lib.ones(3, 1, dtype=dtype),
              "int row": lib.tensor([1, 2, 3, 4]), "bad row": lib.ones(3, dtype=dtype)}
    value = values.get(value, value) if isinstance(value, str) else value
    before = x._version[0]
    try:
        x[key] = value
    except Exception as e:   # noqa: BLE001  (the error is what is compared)
        return type(e).__name__, str(e), x.numpy().tolist()
    return x.numpy().tolist(), alias.numpy().tolist(), x._version[0] - before, \
        x._version is alias._version


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("key,value", SETITEM_CASES, ids=repr)
def test_setitem_fast_path_is_the_general_path(key, value, dtype, monkeypatch):
    dtype = getattr(tracegrad, dtype)
    fast = _setitem_case(tracegrad, dtype, key, value)
    monkeypatch.setattr(indexing, "_eager_setitem", lambda x, key, value: False)
    assert fast == _setitem_case(tracegrad, dtype, key, value)


def test_setitem_into_fast_views_writes_the_base():
    x = tracegrad.zeros(3, 4)
    row = x[1]
    row[2] = 5.0
    x.t()[0] = tracegrad.ones(3)   # not contiguous: the general path
    col = x[:, 3]
    col[...] = 2.0
    expected = np.zeros((3, 4), np.float32)
    expected[1, 2], expected[:, 0], expected[:, 3] = 5, 1, 2
    assert np.array_equal(x.numpy(), expected)
    assert x._version[0] == row._version[0] == col._version[0] == 3


def test_setitem_errors_name_the_op_and_shapes():
    x = tracegrad.zeros(3, 4)
    with pytest.raises(Exception, match=r"__setitem__.*\(3,\).*\(3, 4\)"):
        x[0] = tracegrad.ones(3)
    with pytest.raises(IndexError, match="out of bounds for dimension 0 with size 3"):
        x[3] = 1.0
    leaf = tracegrad.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="__setitem__: a leaf Variable"):
        leaf[0] = 1.0
    non_leaf = leaf * 1
    with tracegrad.no_grad():
        view = non_leaf[1:]
    with pytest.raises(RuntimeError, match="__setitem__: a view was created in no_grad"):
        view[0] = 1.0


def test_setitem_of_a_value_requiring_grad_records_it():
    x = tracegrad.zeros(3, 4)
    w = tracegrad.ones(4, requires_grad=True)
    x[1] = w * 3
    x.sum().backward()
    assert np.array_equal(w.grad.numpy(), np.full(4, 3.0))


TAKE_KEYS = {"int64": lambda lib: lib.tensor([2, 0, -1, 2]), "2-d int64": lambda lib: lib.tensor([[1], [0]]),
             "int32": lambda lib: lib.tensor([1, 2], dtype=lib.int32),
             "mask rows": lambda lib: lib.tensor([True, False, True]),
             "mask all": lambda lib: lib.arange(12).reshape(3, 4) % 3 == 0,
             "empty": lambda lib: lib.tensor([], dtype=lib.int64),
             "uint8 mask": lambda lib: lib.tensor([1, 0, 1], dtype=lib.uint8),
             "0-d": lambda lib: lib.tensor(1)}


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name", sorted(TAKE_KEYS))
def test_index_tensor_fast_path_is_the_general_path(name, requires_grad, general_path):
    fast, general = _both(lambda x: x[TAKE_KEYS[name](tracegrad)], requires_grad, general_path)
    assert fast == general


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("name", sorted(set(TAKE_KEYS) - {"uint8 mask"}))
def test_index_tensor_values_and_gradients_match_torch(name):
    def fn(lib):
        return lambda x: x[TAKE_KEYS[name](lib)]
    x, tx = tracegrad.arange(12.0).reshape(3, 4), torch.arange(12.0).reshape(3, 4)
    assert np.array_equal(fn(tracegrad)(x).numpy(), fn(torch)(tx).numpy())
    assert _grads(tracegrad, fn(tracegrad)) == _grads(torch, fn(torch))


def test_index_tensor_errors_name_dims_and_shapes():
    x = tracegrad.zeros(3, 4)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[tracegrad.tensor([0, 3])]
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 0 with size 3"):
        x[tracegrad.tensor([-4])]
    with pytest.raises(IndexError, match=r"mask \(2,\).*\(3,\)"):
        x[tracegrad.tensor([True, False])]
    with pytest.raises(IndexError, match="tensors used as indices must be long"):
        x[tracegrad.tensor([0.0])]
