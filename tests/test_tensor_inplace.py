"""In-place ops: values, write-through to views and NumPy, version counters, and the
backward-time error when a tensor a derivative rule needs was modified."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch

VERSION_ERROR = "modified by an inplace operation"


def test_inplace_arithmetic_values():
    t = torch.tensor([1.0, 2.0, 3.0])
    assert t.add_(1).tolist() == [2.0, 3.0, 4.0]
    assert t.sub_(torch.tensor([1.0, 1.0, 1.0])).tolist() == [1.0, 2.0, 3.0]
    assert t.mul_(2).tolist() == [2.0, 4.0, 6.0]
    assert t.div_(2).tolist() == [1.0, 2.0, 3.0]
    assert t.add_(torch.ones(3), alpha=2).tolist() == [3.0, 4.0, 5.0]
    assert t.clamp_(max=4).tolist() == [3.0, 4.0, 4.0]
    assert t.clamp_(min=3.5, max=4).tolist() == [3.5, 4.0, 4.0]
    assert t.fill_(2).tolist() == [2.0, 2.0, 2.0]
    assert t.zero_().tolist() == [0.0, 0.0, 0.0]
    assert t.copy_(torch.tensor([7, 8, 9])).tolist() == [7.0, 8.0, 9.0]
    assert t.copy_(torch.tensor(1.0)).tolist() == [1.0, 1.0, 1.0]  # broadcast source
    m = torch.zeros(2, 3)
    m += torch.tensor([1.0, 2.0, 3.0])  # broadcasting in-place
    m *= 2
    m -= 1
    m /= 2
    assert m.tolist() == [[0.5, 1.5, 2.5]] * 2
    n = torch.zeros(3)
    n.normal_(0, 1)
    assert n.std().item() > 0
    n.uniform_(2, 3)
    assert 2 <= n.min().item() and n.max().item() < 3
    assert torch.tensor([1.0, 4.0]).sqrt_().tolist() == [1.0, 2.0]
    assert torch.tensor([-1.0, 4.0]).relu_().tolist() == [0.0, 4.0]


def test_iadd_returns_same_object_and_keeps_storage():
    t = torch.zeros(3)
    ptr, obj = t.data_ptr(), t
    t += 1
    assert t is obj and t.data_ptr() == ptr


def test_int_inplace_rules():
    t = torch.tensor([1, 2, 3])
    t += 1
    assert t.dtype == torch.int64 and t.tolist() == [2, 3, 4]
    with pytest.raises(RuntimeError, match="div_"):
        t.div_(2)


def test_inplace_writes_through_views():
    base = torch.zeros(4, 4)
    base[1:3, 1:3].fill_(1)
    base[:, 0].add_(2)
    base.view(16)[15] = 9
    assert base.sum().item() == 4 + 8 + 9
    arr = np.zeros(3, np.float32)
    torch.from_numpy(arr).mul_(0).add_(5)
    assert arr.tolist() == [5.0, 5.0, 5.0]


def test_inplace_on_expanded_view_raises():
    e = torch.zeros(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="expanded"):
        e.add_(1)


def test_inplace_on_leaf_requiring_grad_raises_but_works_through_data_and_no_grad():
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0] = 5.0
    with torch.no_grad():
        w.sub_(0.5)
    w.data.add_(0.25)
    assert w.tolist() == [0.75] * 3 and w.requires_grad and w.is_leaf


def test_inplace_on_non_leaf_is_recorded():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.mul_(2)
    y.add_(x * x)  # y = 6x + x^2
    assert y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [8.0, 10.0]  # 6 + 2x
    # mul_ by a tensor that requires grad needs self's old value, which it overwrote:
    # as PyTorch does, the rule keeps a copy of the original (y = 3x * x: 6x)
    x.grad = None
    y = x * 3
    y.mul_(x)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_version_counter_bumps():
    t = torch.zeros(3)
    v = t._version_number
    t.add_(1)
    t[0] = 2
    t.zero_()
    assert t._version_number == v + 3
    d = t.detach()
    d.add_(1)
    assert t._version_number == v + 4  # detach shares the counter with the storage


def test_modified_input_detected_at_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y  # MUL saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        z.sum().backward()


def test_modified_output_detected_at_backward():
    x = torch.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # EXP's rule reads its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        y.sum().backward()


def test_modified_output_of_sigmoid_via_data_is_not_detected_but_inplace_op_is():
    x = torch.tensor([0.5], requires_grad=True)
    y = x.sigmoid()
    z = y * 1.0
    with torch.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match=VERSION_ERROR):
        z.backward()


def test_modification_not_needed_by_backward_is_fine():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = x + 1  # ADD reads no inputs
    w = y * 2.0  # MUL by a constant: reads the constant, not y
    y.add_(5)
    w.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_modified_leaf_via_data_detected_when_needed():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    x = torch.tensor([3.0, 4.0], requires_grad=True)
    loss = (w * x).sum()
    x.data.add_(1)  # .data shares the storage, not the version counter (like PyTorch)
    loss.backward()
    assert x.grad.tolist() == [1.0, 2.0]


def test_inplace_keeps_the_history_that_earlier_readers_saw():
    # z read y before the write: its gradient flows through y's old history (PyTorch: 3),
    # not through the multiplication that came later (it gave 6)
    x = torch.ones(3, requires_grad=True)
    y = x * 1
    z = y * 3
    y.mul_(2)
    z.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3, 3])
    x.grad = None
    (y * 1).sum().backward()       # y's own new history: 2
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2, 2])


def test_inplace_through_a_view_bumps_the_shared_version_counter():
    b = torch.zeros(2, 3)
    row, col = b[0], b[:, 1]
    row.add_(1)
    col.mul_(2)
    assert b._version_number == row._version_number == col._version_number == 2
    np.testing.assert_array_equal(b.numpy(), [[1, 2, 1], [0, 0, 0]])


def test_write_through_detach_into_a_compiled_functions_captured_tensor_matches_eager():
    import warnings
    p, p_eager = torch.ones(3), torch.ones(3)

    def fn(t, x):
        t.detach().add_(x)     # a write into t's storage, as in eager mode
        return t * 2

    x = torch.tensor([1.0, 2.0, 3.0])
    compiled = torch.compile(lambda x: fn(p, x))
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = compiled(x)
        np.testing.assert_array_equal(got.numpy(), fn(p_eager, x).numpy())
        np.testing.assert_array_equal(p.numpy(), p_eager.numpy())


def test_inplace_mul_by_a_tensor_that_requires_grad_keeps_the_original_self():
    # PyTorch saves the original self for rules that read it (w's gradient reads old y)
    import tracegrad as tg
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = tg.tensor([2.0, 3.0, 4.0], requires_grad=True)
    y = x * 1
    y.mul_(w)
    (y * y).sum().backward()          # d/dx = 2*y*w, d/dw = 2*y*x with y = x*w
    xv, wv = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * xv * wv * wv, rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), 2 * xv * wv * xv, rtol=1e-6)
    np.testing.assert_allclose(y.detach().numpy(), xv * wv)


def test_inplace_through_a_view_by_a_grad_tensor_keeps_the_original_self():
    import tracegrad as tg
    x = tg.ones(2, 3, requires_grad=True)
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y[0].mul_(w)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 4, 6], [2, 2, 2]])
    np.testing.assert_allclose(w.grad.numpy(), [2, 2, 2])


def test_a_value_saved_before_an_inplace_write_still_raises():
    import tracegrad as tg
    x = tg.ones(3, requires_grad=True)
    w = tg.ones(3, requires_grad=True)
    y = x * 1
    z = y * y                         # saves y
    y.mul_(w)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
