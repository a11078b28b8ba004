"""Ops that take a size follow ``s0`` (issue 13, the per-size retraces of the last pass):
``index_select``/``embedding``/advanced indexing, ``split``/``chunk`` with symbolic
sections, ``tril``/``triu``, ``len(x)`` and the factories (``zeros``, ``ones``, ``full``,
``empty``, ``arange``, ``eye``) given a symbolic size.  Each function is compiled with
``dynamic=True``, called at new sizes, served on its guards without calling the function
again (no trace), and equals eager at every size; where the input requires grad, so does
its gradient."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad.compiler import dynamic

SIZES = (8, 9, 13, 30, 44, 5, 4)   # (at 2, x[1:] has one row: a size-1 guard breaks)
TABLE = torch.randn(20, 4)
INDEX = torch.tensor([0, 1, 1, 0])   # (every size >= 2 has these rows)


def _rows(n, seed=0):
    torch.manual_seed(seed + n)
    return (torch.randn(n, 4),)


def _square(n, seed=0, batch=()):
    torch.manual_seed(seed + n)
    x = torch.randn(*batch, n, n)
    for d in (-1, -2):   # (dynamic=True alone binds the leading dim only)
        torch.compiler.mark_dynamic(x, x.ndim + d)
    return (x,)


def _ids(n, seed=0):
    torch.manual_seed(seed + n)
    return (torch.randint(0, 20, (n,)),)


FOLLOWED = {
    # index length symbolic, or the table's rows symbolic
    "index_select of a table by s0 ids": (lambda i: TABLE.index_select(0, i) * 2, _ids),
    "embedding of s0 ids": (lambda i: F.embedding(i, TABLE) + 1, _ids),
    "embedding of (s0, 3) ids": (lambda i: F.embedding(i.reshape(-1, 1).expand(-1, 3), TABLE),
                                 _ids),
    "index_select of s0 rows": (lambda x: x.index_select(0, INDEX) * 2, _rows),
    "embedding of a table of s0 rows": (lambda t: F.embedding(torch.tensor([[0, 1], [1, 1]]), t)
                                        * 2, _rows),
    "x[:, ids]": (lambda x: x[:, torch.tensor([3, 0])] - 1, _rows),
    "x[ids, 1:]": (lambda x: x[INDEX, 1:] * 3, _rows),
    "x[1:, None][ids]": (lambda x: x[1:, None][torch.tensor([0, 0])] + 2, _rows),
    # a mask of the symbolic shape
    "tril of (s0, s0)": (lambda x: x.tril() * 2, _square),
    "triu(1) of (s0, 4)": (lambda x: x.triu(1) + 1, _rows),
    "tril(-1) of (2, s0, s0)": (lambda x: torch.tril(x, -1), lambda n: _square(n, batch=(2,))),
    # factories given a symbolic size (NOTE (tensors made from a size))
    "zeros(n, 4)": (lambda x: x + torch.zeros(x.shape[0], 4), _rows),
    "ones(n, 1)": (lambda x: x * torch.ones(x.shape[0], 1), _rows),
    "ones((n, 4))": (lambda x: x * torch.ones((x.shape[0], 4)), _rows),
    "full((n, 4), 2.0)": (lambda x: x * torch.full((x.shape[0], 4), 2.0), _rows),
    "full((4,), n)": (lambda x: x * torch.full((4,), x.shape[0]), _rows),
    "empty(n, 4).fill_(1)": (lambda x: torch.empty(x.shape[0], 4).fill_(1.0) + x, _rows),
    "zeros_like(x) + 1": (lambda x: torch.zeros_like(x) + x * 2, _rows),
    "full_like(x, 3)": (lambda x: torch.full_like(x, 3.0) - x, _rows),
    "arange(n)": (lambda x: x * torch.arange(x.shape[0]).reshape(-1, 1), _rows),
    "arange(1, n + 1) float": (lambda x: x / torch.arange(1, x.shape[0] + 1,
                                                          dtype=torch.float32)[:, None], _rows),
    # split and chunk: sections that follow s0 (NOTE (split of a symbolic dim))
    "split([1, n - 1])": (lambda x: torch.cat([a * 2 for a in x.split([1, x.shape[0] - 1])]),
                          _rows),
    "split([2, n - 3, 1])": (lambda x: tuple(a.sum(0) for a in x.split([2, x.shape[0] - 3, 1])),
                             _rows),   # (a sum: a * 2 guards s0 - 3 != 1, a broadcast)
    "split(64) of up to 64 rows": (lambda x: tuple(a - 1 for a in x.split(64)), _rows),
    "chunk(2) of the other dim": (lambda x: tuple(a * 2 for a in x.chunk(2, dim=1)), _rows),
    # len(x) (NOTE (len of a symbolic dim)) and a tensor divided by a size
    "x * len(x)": (lambda x: x * len(x), _rows),
    "x[: len(x) - 1]": (lambda x: x[: len(x) - 1] * 2, _rows),
    "arange(n).float()[:, None]": (lambda x: x + torch.arange(x.shape[0]).float()[:, None],
                                   _rows),
    "x.sum(0) / len(x)": (lambda x: x.sum(0) / len(x), _rows),
    "x.sum(0) / x.shape[0]": (lambda x: x.sum(0) / x.shape[0], _rows),
    "eye(n) @ x": (lambda x: torch.eye(x.shape[0]) @ x * 2, _rows),
    "eye(4, n) @ x": (lambda x: torch.eye(4, x.shape[0]) @ x, _rows),
    "arange(n) == ids (one-hot)": (lambda i: (torch.arange(20)[None, :] == i[:, None]).float()
                                   * torch.arange(i.shape[0])[:, None], _ids),
}


def _leaf(x):
    """A leaf that requires grad, with ``x``'s dims marked dynamic."""
    out = x.detach().requires_grad_(True)
    for d in x.__dict__.get("_dynamic_dims", ()):
        torch.compiler.mark_dynamic(out, d)
    return out


def _check(fn, make, sizes=SIZES, grad=False, count=True):
    calls = [0]

    def counted(*args):
        calls[0] += 1
        return fn(*args)
    c = torch.compile(counted, dynamic=True)
    for k, n in enumerate(sizes):
        args = make(n)
        if grad:
            args = tuple(_leaf(a) for a in args)
            mine = tuple(_leaf(a) for a in args)
        else:
            mine = args
        before = calls[0]
        got, want = c(*mine), fn(*args)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        assert len(got) == len(want), f"s0={n}"
        for a, b in zip(got, want):
            assert tuple(a.shape) == tuple(b.shape), f"s0={n}"
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=f"s0={n}")
        if grad:
            sum(o.sum() for o in got).backward()
            sum(o.sum() for o in want).backward()
            for a, b in zip(mine, args):
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5,
                                           atol=1e-6, err_msg=f"grad at s0={n}")
        if k and count:
            assert calls[0] == before, f"s0={n} traced again: {c.cache_info().symbolic}"
    (group,) = c._groups.values()
    assert group.fits[0].guarded.why_not is None, group.fits[0].guarded.why_not
    return c


@pytest.mark.parametrize("name", list(FOLLOWED))
def test_an_op_taking_a_size_is_served_on_its_guards(name):
    _check(*FOLLOWED[name])


@pytest.mark.parametrize("name", list(FOLLOWED))
def test_kernel_counts_are_those_of_the_specialised_program(name):
    fn, make = FOLLOWED[name]
    symbolic, specialised = torch.compile(fn, dynamic=True), torch.compile(fn, dynamic=False)
    for n in (8, 13):
        symbolic(*make(n))
        specialised(*make(n))
    args = make(13)

    def kernels(c):
        entry = c._cache[c._signature(args, {})[2]]
        return [len(p.kernels) for p in (entry.forward_plan, entry.backward_plan)
                if p is not None]
    assert kernels(symbolic) == kernels(specialised)


@pytest.mark.parametrize("name", ["index_select of s0 rows", "x[ids, 1:]", "tril of (s0, s0)",
                                  "zeros(n, 4)", "arange(1, n + 1) float"])
def test_gradients_follow_s0(name):
    """(the index's gradient builds its zeros with ``F.full`` of the symbolic shape)"""
    _check(*FOLLOWED[name], grad=True)


def test_the_symbolic_programs_are_the_planned_ones(monkeypatch):
    """CHECK_INSTANCES traces and plans every size served and compares it with the fitted
    program."""
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)
    for name in FOLLOWED:
        _check(*FOLLOWED[name], sizes=(8, 9, 13, 5), count=False)


MORE = {
    # written in place after it was made
    "zeros(n, 4) written": (lambda x: _written(torch.zeros(x.shape[0], 4)) + x, _rows),
    "arange(n) indexes": (lambda x: x[torch.arange(x.shape[0] - 1)] * 2, _rows),
}


def _written(z):
    z[0] = 1.0
    z.mul_(3.0)
    return z


@pytest.mark.parametrize("name", list(MORE))
def test_made_tensors_used_further_are_served_on_their_guards(name):
    _check(*MORE[name])


def test_values_of_a_made_tensor_read_in_python_retrace_and_stay_right():
    """A made tensor's values read in Python (its length through ``.tolist()``) are no
    size the guards follow: the guard trace fails, every new size is traced again, and the
    answers are each size's."""
    def f(x):
        k = len(torch.arange(x.shape[0]).tolist())
        return x * k
    c = torch.compile(f, dynamic=True)
    for n in (8, 9, 13, 5):
        x = torch.randn(n, 4)
        np.testing.assert_allclose(c(x).numpy(), f(x).numpy(), rtol=1e-6)
    (group,) = c._groups.values()
    assert group.fits[0].guarded.why_not is not None


def test_len_is_the_real_one_outside_guard_traces():
    import builtins
    real = builtins.len
    c = torch.compile(lambda x: x * len(x), dynamic=True)
    for n in (8, 9):
        c(torch.randn(n, 2))
    assert builtins.len is real and len(torch.randn(3, 2)) == 3


def test_a_fixed_split_size_over_s0_is_guarded_by_the_number_of_pieces():
    """NOTE (split of a symbolic dim): ``x.split(2)`` gives ceil(s0 / 2) results, which no
    one program returns: each size is its own program (right at every size); ``chunk(2)``
    always gives two pieces of ceil(s0 / 2) and the rest: one fit per parity."""
    def pieces(x):
        return tuple(a * 2 for a in x.split(2))

    def halves(x):
        return tuple(a.sum(0) for a in x.chunk(2))
    for fn, fits in ((pieces, None), (halves, 2)):
        c = torch.compile(fn, dynamic=True)
        for n in (8, 9, 13, 30, 5, 6, 7):
            x = torch.randn(n, 3)
            got, want = c(x), fn(x)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
        if fits is None:
            assert not c._groups and "outputs change with s0" in c.cache_info().symbolic[0]
        else:
            (group,) = c._groups.values()
            assert len(group.fits) == fits and c.cache_info().misses == fits


def test_the_advanced_index_shape_is_numpy_s():
    """``_advanced_index_shape`` (the shape rule that follows symbolic sizes) equals NumPy's
    own on random keys: slices, integers, None, Ellipsis and index arrays that broadcast,
    adjacent or apart."""
    import random

    from tracegrad._primitives.linalg_index import TENSOR, _advanced_index_shape, build_key
    rng = random.Random(0)
    entries = [TENSOR, slice(None), slice(1, None), slice(None, None, -2), 0, -1, None,
               Ellipsis]
    checked = 0
    for _ in range(3000):
        shape = tuple(rng.randint(1, 5) for _ in range(rng.randint(1, 4)))
        spec = tuple(rng.choice(entries) for _ in range(rng.randint(1, 4)))
        index_shapes = [rng.choice([(3,), (1,), (2, 3), (2, 1), ()]) for k in spec
                        if k is TENSOR]
        probe = np.broadcast_to(np.zeros((), bool), shape)
        try:
            want = probe[build_key(spec, [np.zeros(s, np.int64) for s in index_shapes])].shape
        except (IndexError, ValueError):
            continue
        got = _advanced_index_shape(shape, index_shapes,
                                    [np.dtype(np.int64)] * len(index_shapes), spec)
        assert got == want, (shape, spec, index_shapes)
        checked += 1
    assert checked > 1500
