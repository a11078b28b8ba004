"""NOTE (recycled results, runtime/cpu_program.py): a result of a compiled call (big or
small) is reused by a later call only when nothing, not even a view, still references it."""
import numpy as np

import tracegrad
import tracegrad.nn as nn
from compile_step_testing import make_step

rng = np.random.default_rng(0)


def _big():
    return tracegrad.from_numpy(rng.standard_normal((400, 100)).astype(np.float32))


def test_a_held_result_is_never_overwritten():
    f = tracegrad.compile(lambda x: x * 2 + 1)
    x1, x2, x3 = _big(), _big(), _big()
    r1 = f(x1)
    want = r1.numpy().copy()
    r2 = f(x2)
    r3 = f(x3)
    np.testing.assert_array_equal(r1.numpy(), want)
    np.testing.assert_array_equal(r2.numpy(), x2.numpy() * 2 + 1)
    np.testing.assert_array_equal(r3.numpy(), x3.numpy() * 2 + 1)


def test_a_view_of_a_dropped_result_keeps_its_values():
    f = tracegrad.compile(lambda x: x.exp())
    x = _big()
    r = f(x).numpy()
    view = r[3:7]
    reshaped = r.reshape(-1)[:50]
    want_view, want_reshaped = view.copy(), reshaped.copy()
    del r
    for _ in range(3):
        f(_big())
    np.testing.assert_array_equal(view, want_view)
    np.testing.assert_array_equal(reshaped, want_reshaped)


def test_a_dropped_result_is_reused():
    f = tracegrad.compile(lambda x: x * 3)
    x = _big()
    f(x)
    f(x)   # the first result was dropped: the third call may take it back
    program = next(iter(f._cache.values())).forward
    (spares,) = program._spares.values()
    before = [id(a) for a, _address in spares]
    out = f(x)
    assert id(out._data) in before
    np.testing.assert_array_equal(out.numpy(), x.numpy() * 3)


def test_an_old_grad_kept_by_the_user_keeps_its_values_across_steps():
    tracegrad.manual_seed(0)
    model = nn.Linear(300, 100)     # a 120 KB weight: its grad is a big (pooled) result
    opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    step = tracegrad.compile(make_step(model, opt), fullgraph=True)

    kept = []
    for _ in range(5):
        x = tracegrad.from_numpy(rng.standard_normal((16, 300)).astype(np.float32))
        y = tracegrad.from_numpy(rng.integers(0, 100, 16))
        step(x, y)
        kept.append((model.weight.grad, model.weight.grad.numpy().copy()))
    for grad, values in kept:
        np.testing.assert_array_equal(grad.numpy(), values)
    assert len({id(g._data) for g, _ in kept}) == len(kept)


def test_small_results_held_or_viewed_keep_their_values():
    # small results (a loss, a 10x10 grad) are recycled too: a held one, a 0-d one kept
    # as an array, or a view of a dropped one must never be written by a later call
    f = tracegrad.compile(lambda x: ((x * 2).sum(), x + 1))
    xs = [tracegrad.from_numpy(rng.standard_normal((10, 10)).astype(np.float32))
          for _ in range(6)]
    held = f(xs[0])
    loss_array = f(xs[1])[0].numpy()
    view = f(xs[2])[1].numpy()[2:5]
    want_view = xs[2].numpy()[2:5] + 1
    for x in xs[3:]:
        loss, plus = f(x)
        np.testing.assert_allclose(loss.item(), (x.numpy() * 2).sum(), rtol=1e-5)
        np.testing.assert_array_equal(plus.numpy(), x.numpy() + 1)
    np.testing.assert_allclose(held[0].item(), (xs[0].numpy() * 2).sum(), rtol=1e-5)
    np.testing.assert_array_equal(held[1].numpy(), xs[0].numpy() + 1)
    np.testing.assert_allclose(float(loss_array), (xs[1].numpy() * 2).sum(), rtol=1e-5)
    np.testing.assert_array_equal(view, want_view)


def test_a_dropped_small_result_is_reused():
    f = tracegrad.compile(lambda x: x * 3)
    x = tracegrad.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
    f(x)
    f(x)
    program = next(iter(f._cache.values())).forward
    (spares,) = program._spares.values()
    out = f(x)
    assert id(out._data) in [id(a) for a, _address in spares]
    np.testing.assert_array_equal(out.numpy(), x.numpy() * 3)
