"""Arguments that share memory with an argument the function writes in place: eagerly the
other argument sees the write, while a compiled program reads each argument as it was at
the call; such a call runs eagerly (before: f(x, x) with ``a.mul_(2); return b + 1``
returned x + 1 from the old x, 1 off eager)."""
import numpy as np
import pytest

import tracegrad as tg


def _write_then_read(a, b):
    a.mul_(2.0)
    return b + 1.0


def _accumulate(a, b):
    a.add_(b)
    return a * b


ALIASED = {
    "the same tensor": lambda t: (t, t),
    "overlapping slices": lambda t: (t[1:], t[:3]),
    "a detach() alias": lambda t: (t, t.detach()),
    "a transpose": lambda t: (t.reshape(2, 2), t.reshape(2, 2).t()),
}


@pytest.mark.parametrize("fn", [_write_then_read, _accumulate])
@pytest.mark.parametrize("alias", sorted(ALIASED))
def test_aliased_arguments_of_a_written_argument_match_eager(alias, fn):
    compiled = tg.compile(fn)
    for call in range(3):   # traced with aliased arguments, then with distinct ones
        base = np.arange(4, dtype=np.float32) + call
        results = []
        for f in (fn, compiled):
            t = tg.tensor(base.copy())
            args = ALIASED[alias](t) if call != 1 else (tg.tensor(base[:3].copy()),
                                                        tg.tensor(base[:3].copy()))
            if call == 1 and alias == "a transpose":
                args = tuple(a.reshape(3, 1) * tg.ones(1, 3) for a in args)
            out = f(*args)
            results.append((out.numpy().copy(), t.numpy().copy()))
        for got, want in zip(results[1], results[0]):
            np.testing.assert_array_equal(got, want)


def test_distinct_arguments_still_replay():
    compiled = tg.compile(_write_then_read)
    for _ in range(3):
        a, b = tg.ones(3), tg.ones(3)
        np.testing.assert_array_equal(compiled(a, b).numpy(), [2.0, 2.0, 2.0])
        np.testing.assert_array_equal(a.numpy(), [2.0, 2.0, 2.0])
    assert compiled.cache_info().hits == 2
