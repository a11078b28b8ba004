"""Views are PyTorch's views: they share storage and a version counter with their base,
know that base, and an in-place op through any alias rewrites the base's autograd history
(values and gradients here are what PyTorch gives, written out by hand or with NumPy)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracegrad as torch

VERSION_ERROR = "modified by an inplace operation"


def _base_3x4():
    return torch.tensor(np.arange(12.0).reshape(3, 4))


# Each case: (name, view op on a (3, 4) base, the same on a NumPy array).
VIEW_OPS = [
    ("view", lambda x: x.view(4, 3), lambda a: a.reshape(4, 3)),
    ("view_as", lambda x: x.view_as(torch.zeros(2, 6)), lambda a: a.reshape(2, 6)),
    ("t", lambda x: x.t(), lambda a: a.T),
    ("T", lambda x: x.T, lambda a: a.T),
    ("mT", lambda x: x.mT, lambda a: a.T),
    ("transpose", lambda x: x.transpose(0, 1), lambda a: a.T),
    ("permute", lambda x: x.permute(1, 0), lambda a: a.T),
    ("narrow", lambda x: x.narrow(1, 1, 2), lambda a: a[:, 1:3]),
    ("select", lambda x: x.select(1, -1), lambda a: a[:, -1]),
    ("tracegrad.select", lambda x: torch.select(x, 0, 1), lambda a: a[1]),
    ("unsqueeze", lambda x: x.unsqueeze(1), lambda a: a[:, None]),
    ("squeeze", lambda x: x[:1].squeeze(0), lambda a: a[0]),
    ("expand", lambda x: x[:1].expand(2, 4), lambda a: np.broadcast_to(a[:1], (2, 4))),
    ("slice with steps", lambda x: x[::2, 1::2], lambda a: a[::2, 1::2]),
    ("negative step slice via flip", lambda x: x[1:, ::-1], lambda a: a[1:, ::-1]),
    ("int index", lambda x: x[1], lambda a: a[1]),
    ("unbind", lambda x: x.unbind(1)[2], lambda a: a[:, 2]),
    ("chunk", lambda x: x.chunk(2, 1)[1], lambda a: a[:, 2:]),
    ("split", lambda x: x.split([1, 3], 1)[1], lambda a: a[:, 1:]),
    ("diagonal", lambda x: x.diagonal(), lambda a: np.diagonal(a)),
    ("diagonal offset", lambda x: x.diagonal(1), lambda a: np.diagonal(a, 1)),
    ("diagonal negative offset", lambda x: torch.diagonal(x, -1), lambda a: np.diagonal(a, -1)),
    ("flatten", lambda x: x.flatten(), lambda a: a.reshape(-1)),
    ("unflatten", lambda x: x.unflatten(1, (2, 2)), lambda a: a.reshape(3, 2, 2)),
    ("reshape (viewable)", lambda x: x.reshape(2, 6), lambda a: a.reshape(2, 6)),
]


@pytest.mark.parametrize("name,op,np_op", VIEW_OPS, ids=[c[0] for c in VIEW_OPS])
def test_view_ops_share_storage_version_and_know_their_base(name, op, np_op):
    base = _base_3x4()
    v = op(base)
    assert v._is_view() and v._base is base
    np.testing.assert_array_equal(v.numpy(), np_op(np.arange(12.0).reshape(3, 4)))
    before = v._version_number
    with torch.no_grad():
        base.mul_(10)  # a write into the base is seen through the view...
    np.testing.assert_array_equal(v.numpy(), np_op(np.arange(12.0).reshape(3, 4) * 10))
    assert v._version_number == before + 1  # ...and bumps its version counter


def test_a_view_of_a_view_has_the_root_as_base_and_writes_reach_it():
    base = torch.zeros(4, 6)
    v = base[1:].t()[::2]           # (3, 3) over rows 1..3, columns 0, 2, 4
    assert v._base is base
    v.fill_(1)                      # no autograd: a plain write through NumPy
    expected = np.zeros((4, 6))
    expected[1:, ::2] = 1
    np.testing.assert_array_equal(base.numpy(), expected)
    assert base._version_number == v._version_number == 1


def test_detach_shares_storage_and_version_counter_but_is_not_a_view():
    x = torch.ones(3, requires_grad=True)
    d = x.detach()
    assert not d._is_view() and d._base is None     # as in PyTorch
    with torch.no_grad():
        d.add_(1)
    np.testing.assert_array_equal(x.detach().numpy(), [2, 2, 2])
    assert x._version_number == 1


def test_advanced_indexing_and_non_viewable_reshape_copy():
    base = _base_3x4()
    picked = base[[0, 2]]
    assert not picked._is_view()
    flat = base.t().reshape(-1)                     # transposed: no view possible
    assert not flat._is_view()
    flat.fill_(-1)
    np.testing.assert_array_equal(base.numpy(), np.arange(12.0).reshape(3, 4))


# ---- view() where strides do not allow it; contiguous() ---------------------------------

@pytest.mark.parametrize("make", [lambda b: b.t(), lambda b: b.permute(1, 0),
                                  lambda b: b[:1].expand(3, 4), lambda b: b[:, :2]])
def test_view_raises_where_strides_do_not_allow_a_view(make):
    with pytest.raises(RuntimeError, match=r"view size is not compatible with input tensor's "
                                           r"size and stride .*Use \.reshape\(\.\.\.\) instead"):
        make(_base_3x4()).view(-1)


def test_view_is_allowed_where_strides_allow_it_even_if_not_contiguous():
    b = torch.tensor(np.arange(24.0).reshape(2, 3, 4))
    v = b.permute(1, 0, 2).view(3, 2, 2, 2)         # splits the last (contiguous) dim only
    assert v._base is b
    np.testing.assert_array_equal(
        v.numpy(), np.arange(24.0).reshape(2, 3, 4).transpose(1, 0, 2).reshape(3, 2, 2, 2))


def test_contiguous_copies_when_not_contiguous():
    b = _base_3x4()
    c = b.t().contiguous()
    assert c.is_contiguous() and not c._is_view()
    c.fill_(7)
    np.testing.assert_array_equal(b.numpy(), np.arange(12.0).reshape(3, 4))
    assert b.contiguous() is b


def test_expand_then_contiguous_is_a_writable_copy():
    e = torch.tensor([1.0, 2.0]).expand(3, 2)
    with pytest.raises(RuntimeError, match="refers to a single memory location"):
        e.add_(0)   # (fill_ passes, as in PyTorch: NOTE (overlapping writes))
    c = e.contiguous().fill_(1)
    np.testing.assert_array_equal(c.numpy(), np.ones((3, 2)))


# ---- in-place through a view and autograd ------------------------------------------------

def test_inplace_on_view_updates_the_base_history():
    x = torch.ones(3, 3, requires_grad=True)
    y = x * 1
    y[:, 0].mul_(2)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 1, 1]] * 3)


def test_the_written_view_itself_sees_the_new_history():
    x = torch.ones(3, 3, requires_grad=True)
    y = x * 1
    v = y[:, 0]
    v.mul_(2)
    (v * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[6, 0, 0]] * 3)


def test_other_views_and_earlier_consumers_see_the_right_history():
    x = torch.ones(3, 3, requires_grad=True)
    y = x * 1
    before = y * 5            # read before the write: its gradient is 5 everywhere
    overlap = y[:, :2]        # a live view that overlaps the written column
    y[:, 0].mul_(2)
    (overlap.sum() + before.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[7, 6, 5]] * 3)


def test_inplace_on_base_regenerates_its_views_history():
    x = torch.ones(2, 3, requires_grad=True)
    y = x * 1
    row = y[1]
    y.mul_(torch.tensor([1.0, 2.0, 3.0]))
    row.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0], [1, 2, 3]])


def test_views_follow_a_base_that_comes_to_require_grad():
    w = torch.ones(3, requires_grad=True)
    y = torch.zeros(3)
    v = y[:2]                        # made while y needs no grad
    y.copy_(w)
    assert v.requires_grad
    ((v * 2).sum() + w.sum()).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3, 3, 1])

    w = torch.ones(3, requires_grad=True)
    y = torch.zeros(3)
    v, u = y[:2], y[2:]
    u.copy_(w[2:] * 5)               # through another view
    ((v + 1).sum() + (u * 2).sum()).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0, 0, 10])

    y = torch.zeros(3)
    v = y[1:]
    y.requires_grad_()
    (v * 3).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0, 3, 3])


def test_a_view_of_a_leaf_written_without_grad_still_sends_gradients_to_the_leaf():
    p = torch.ones(3, requires_grad=True)
    v = p[1:]
    with torch.no_grad():
        p.add_(1)                    # the view's version moves; its history is replayed
    (v * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [0, 2, 2])
    np.testing.assert_array_equal(v.detach().numpy(), [2, 2])


def test_setitem_on_a_view_with_autograd():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = torch.tensor([5.0], requires_grad=True)
    y = x * 1
    row = y[1]
    row[0] = w[0] * 2           # y becomes [[1, 2], [10, 4]]
    np.testing.assert_array_equal(y.detach().numpy(), [[1, 2], [10, 4]])
    (y * y).sum().backward()    # d/dx: 2x except the overwritten slot; d/dw: 2 * 2 * 10
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 4], [0, 8]])
    np.testing.assert_array_equal(w.grad.numpy(), [40])


def test_inplace_through_a_view_gradient_matches_finite_differences():
    def f(x):
        y = x.sin() * 2
        y.t()[1:, ::2].mul_(3).add_(x[:2, :1].t().expand(2, 2))  # a view of a view, steps
        y.diagonal().sub_(x.diagonal() ** 2)
        y[0].exp_()
        return y

    x = torch.tensor(np.random.default_rng(0).normal(size=(3, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_gradients_of_view_ops_match_finite_differences():
    x = torch.tensor(np.random.default_rng(1).normal(size=(3, 4)), requires_grad=True)
    for name, op, _ in VIEW_OPS:
        assert torch.autograd.gradcheck(lambda t: op(t * 1) * 1, (x,), eps=1e-6, atol=1e-6), name


@pytest.mark.parametrize("alias", [lambda s: s[0], lambda s: s.t(), lambda s: s.detach(),
                                   lambda s: s.view(-1)[:2]])
def test_modifying_a_saved_tensor_through_any_alias_raises(alias):
    x = torch.randn(2, 3, requires_grad=True)
    s = x.sigmoid()                      # sigmoid's derivative reads its output
    with torch.no_grad():
        alias(s).mul_(2)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        s.sum().backward()


def test_modifying_a_saved_input_through_a_view_raises():
    x = torch.randn(3, requires_grad=True)
    y = x * 1
    z = y * y                            # mul saves y
    y[1:].add_(1)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        z.sum().backward()


def test_inplace_on_a_view_of_a_leaf_that_requires_grad_raises_and_changes_nothing():
    x = torch.ones(4, requires_grad=True)
    for write in (lambda v: v.mul_(2), lambda v: v.fill_(0), lambda v: v.__setitem__(0, 5.0),
                  lambda v: v.add_(torch.ones(2))):
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad "
                                               "is being used in an in-place operation"):
            write(x[:2])
    np.testing.assert_array_equal(x.detach().numpy(), [1, 1, 1, 1])
    with torch.no_grad():
        x[:2].mul_(2)                    # allowed without grad mode, as in PyTorch
    np.testing.assert_array_equal(x.detach().numpy(), [2, 2, 1, 1])


def test_select_checks_its_arguments():
    x = torch.zeros(2, 3)
    with pytest.raises(IndexError, match="select"):
        x.select(1, 3)
    with pytest.raises(IndexError, match="dimension out of range"):
        x.select(2, 0)
    assert x.select(1, -3)._base is x


# ---- .grad of a non-leaf -----------------------------------------------------------------

def test_grad_of_a_non_leaf_warns_as_pytorch_does():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match=r"The \.grad attribute of a Tensor that is not a "
                                         r"leaf Tensor is being accessed.*retain_grad\(\)"):
        assert y.grad is None
    z = x * 3
    z.retain_grad()
    z.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(z.grad.numpy(), [1, 1])
        np.testing.assert_array_equal(x.grad.numpy(), [5, 5])
        assert torch.ones(1).grad is None


# ---- the same programs under compile -----------------------------------------------------

def _write_through_column(x):
    y = x * 1
    y[:, 0].mul_(2)
    return y * y


def _write_base_while_a_view_lives(x):
    y = x * 1
    row = y[1]
    y.add_(1)
    return row * 3


def _write_through_transpose_then_read_base(x):
    y = x + 0
    y.t()[0].fill_(5)
    return y.sum(1)


def _setitem_on_a_view(x):
    y = x * 2
    v = y[1:]
    v[0, 1] = -1.0
    return y


WRITE_PROGRAMS = [_write_through_column, _write_base_while_a_view_lives,
                  _write_through_transpose_then_read_base, _setitem_on_a_view]


@pytest.mark.parametrize("fn", WRITE_PROGRAMS, ids=[f.__name__ for f in WRITE_PROGRAMS])
def test_compiled_writes_through_views_match_eager(fn):
    """A write through a view of a tensor the function computed compiles (NOTE (view
    writes in a trace) in _ops/writes.py); reading a view the write left behind falls
    back to eager."""
    data = np.random.default_rng(2).normal(size=(3, 3))
    x_eager = torch.tensor(data, requires_grad=True)
    expected = fn(x_eager)
    expected.sum().backward()
    x = torch.tensor(data, requires_grad=True)
    if fn is _write_base_while_a_view_lives:
        with pytest.warns(RuntimeWarning, match="view"):
            got = torch.compile(fn)(x)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = torch.compile(fn, fullgraph=True)(x)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy())
    got.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy())


def test_compiled_view_programs_without_writes_compile_and_match_eager():
    def fn(x):
        a = x.t().contiguous().view(-1)          # view of a contiguous copy: allowed
        b = x.diagonal() * x.select(1, 0) + x.mT[1]
        parts = x.unbind(0)
        return a.sum() + b.sum() + (parts[0] * parts[2]).sum() + x.narrow(0, 1, 2).sum()

    data = np.random.default_rng(3).normal(size=(3, 3)).astype(np.float32)
    x_eager = torch.tensor(data, requires_grad=True)
    expected = fn(x_eager)
    expected.backward()
    x = torch.tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # a fallback warns: this must compile
        got = torch.compile(fn)(x)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-5)
    got.backward()
    np.testing.assert_allclose(x.grad.numpy(), x_eager.grad.numpy(), rtol=1e-5)


def test_compiled_view_of_a_transposed_value_raises_as_eager_does():
    fn = torch.compile(lambda x: (x * 1).t().view(-1))
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(torch.ones(2, 3))


def test_compiled_write_into_a_captured_buffer_through_a_view_matches_eager():
    buf, buf_eager = torch.zeros(3, 4), torch.zeros(3, 4)

    def fn(b, x):
        b.t()[1:3].add_(x)
        return b.sum()

    x = torch.ones(2, 3)
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = torch.compile(lambda x: fn(buf, x))(x)
        expected = fn(buf_eager, x)
        np.testing.assert_allclose(got.numpy(), expected.numpy())
        np.testing.assert_allclose(buf.numpy(), buf_eager.numpy())


@pytest.mark.parametrize("alias", [lambda y: y.detach(), lambda y: y.data],
                         ids=["detach", "data"])
def test_compiled_read_of_an_alias_after_a_write_matches_eager(alias):
    def fn(x):
        y = x * 1
        d = alias(y)
        y.add_(1)            # eagerly d shows this write
        return d * 2

    x = torch.tensor([1.0, 2.0])
    with pytest.warns(RuntimeWarning, match="detach"):
        got = torch.compile(fn)(x)
    np.testing.assert_array_equal(got.numpy(), fn(x).numpy())


def test_compiled_data_assignment_compiles_and_matches_eager():
    p, p_eager = torch.ones(3), torch.ones(3)

    def step(p, g):
        p.data = p.data - 0.1 * g   # the alias is read before the write: nothing to follow
        return p * 1

    g = torch.tensor([1.0, 2.0, 3.0])
    compiled = torch.compile(lambda g: step(p, g))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a fallback warns: this must compile
        for _ in range(3):
            got = compiled(g)
            np.testing.assert_allclose(got.numpy(), step(p_eager, g).numpy(), rtol=1e-6)
            np.testing.assert_allclose(p.numpy(), p_eager.numpy(), rtol=1e-6)


def test_inplace_with_grad_on_a_view_made_under_no_grad_raises():
    x = torch.ones(4, requires_grad=True)
    with torch.no_grad():
        v = x[:2]
        v.mul_(2)                     # fine: the write is untracked too
    with pytest.raises(RuntimeError, match="created in no_grad mode"):
        v.mul_(2)
    np.testing.assert_allclose(x.detach().numpy(), [2, 2, 1, 1])
    plain = torch.ones(4)             # a base that needs no grad: no restriction
    with torch.no_grad():
        w = plain[:2]
    w.mul_(3)
    np.testing.assert_allclose(plain.numpy(), [3, 3, 1, 1])
