"""Structural checks of generated kernels that decide speed (no timings): index math of
views folds div/mod of affine sums (NOTE (affine div/mod) in codegen.loop_ir) and stays
equal to the unsimplified arithmetic."""
import numpy as np
import pytest

from tracegrad.codegen.ops import Op
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.loop_ir import INDEX, BufferArg, Instr, KernelBuilder, Loop


def _instrs(body):
    for s in body:
        if isinstance(s, Loop):
            yield from _instrs(s.body)
        elif isinstance(s, Instr):
            yield s


def _divmods(kernel):
    return [s for s in _instrs(kernel.body) if s.op in (Op.IDIV, Op.MOD)]


def test_row_major_unravel_of_row_index_folds():
    # (o*144 + j) unravelled in (., 4, 4, 16, 3, 3): only divisions of j or o remain
    b = KernelBuilder("k", outer=64)
    j = b.begin_loop(144, "j")
    c = lambda v: b.const(v, INDEX)  # noqa: E731
    lin = b.emit(Op.ADD, (b.emit(Op.MUL, ("o", c(144)), INDEX), j), INDEX)
    outs = []
    stride = 1
    for n in (3, 3, 16, 4, 4):
        outs.append(b.emit(Op.MOD, (b.emit(Op.IDIV, (lin, c(stride)), INDEX), c(n)), INDEX))
        stride *= n
    total = c(0)
    for k, m in enumerate(outs):
        total = b.emit(Op.ADD, (total, b.emit(Op.MUL, (m, c(7 ** k)), INDEX)), INDEX)
    b.store("buf0", lin, total)
    b.end_loop()
    kernel = b.finish([BufferArg("buf0", INDEX, 64 * 144, True)])
    for s in _divmods(kernel):
        assert lin not in s.args, f"div/mod of the row-major linear index survived: {s}"
    out = np.zeros(64 * 144, np.int64)
    run_kernel(kernel, {"buf0": out})
    idx = np.arange(64 * 144)
    want = sum(((idx // st) % n) * 7 ** k
               for k, (st, n) in enumerate(zip((1, 3, 9, 144, 576), (3, 3, 16, 4, 4))))
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("seed", range(60))
def test_affine_divmod_random(seed):
    """Random sums of (loop var * k) + const, divided and reduced by random constants and
    re-linearised (a view over a view): the folded IR computes what floor division and
    modulo of the plain integers do."""
    rng = np.random.default_rng(seed)
    outer = int(rng.integers(1, 40))
    ext = [int(rng.integers(1, 12)) for _ in range(2)]
    b = KernelBuilder("k", outer=outer)
    c = lambda v: b.const(int(v), INDEX)  # noqa: E731
    v0 = b.begin_loop(ext[0], "r")
    v1 = b.begin_loop(ext[1], "r")
    o, r0, r1 = (a.ravel() for a in np.meshgrid(np.arange(outer), np.arange(ext[0]),
                                                 np.arange(ext[1]), indexing="ij"))
    const = int(rng.integers(0, 20))
    x, xv = c(const), np.full(o.shape, const)
    for a, av in (("o", o), (v0, r0), (v1, r1)):
        k = int(rng.choice([1, 2, 3, 4, 6, 8, 9, 12, 16, 24, 36, 48]))
        x, xv = b.emit(Op.ADD, (x, b.emit(Op.MUL, (a, c(k)), INDEX)), INDEX), xv + av * k
    exprs = [(x, xv)]
    for _ in range(6):
        e, ev = exprs[int(rng.integers(len(exprs)))]
        d = int(rng.choice([2, 3, 4, 6, 8, 9, 12, 16, 36, 64]))
        if rng.random() < 0.5:
            exprs.append((b.emit(Op.IDIV, (e, c(d)), INDEX), ev // d))
        else:
            exprs.append((b.emit(Op.MOD, (e, c(d)), INDEX), ev % d))
        if rng.random() < 0.5:
            k = int(rng.choice([1, 2, 3, 10]))
            e2, ev2 = exprs[int(rng.integers(len(exprs)))]
            e1, ev1 = exprs[-1]
            exprs.append((b.emit(Op.ADD, (b.emit(Op.MUL, (e1, c(k)), INDEX), e2), INDEX),
                          ev1 * k + ev2))
    n = o.size
    flat = b.emit(Op.ADD, (b.emit(Op.MUL, (b.emit(Op.ADD, (b.emit(Op.MUL, ("o", c(ext[0])), INDEX),
                                                        v0), INDEX), c(ext[1])), INDEX), v1),
                  INDEX)
    for k, (e, _) in enumerate(exprs):
        b.store(f"buf{k}", flat, e)
    b.end_loop()
    b.end_loop()
    kernel = b.finish([BufferArg(f"buf{k}", INDEX, n, True) for k in range(len(exprs))])
    bufs = {f"buf{k}": np.zeros(n, np.int64) for k in range(len(exprs))}
    run_kernel(kernel, bufs)
    for k, (_, ev) in enumerate(exprs):
        np.testing.assert_array_equal(bufs[f"buf{k}"], ev, err_msg=f"expression {k}")


def test_divmod_through_safe_index_where():
    """A masked view's safe index WHERE(valid, i, 0) then unravelled: div/mod go into the
    branches, the valid branch folds, and valid lanes keep their exact values."""
    b = KernelBuilder("k", outer=16)
    c = lambda v: b.const(v, INDEX)  # noqa: E731
    j = b.begin_loop(10, "j")
    i = b.emit(Op.ADD, (b.emit(Op.ADD, (b.emit(Op.MUL, ("o", c(8)), INDEX), j), INDEX), c(-1)),
               INDEX)  # o*8 + j - 1: a pad of 1 before rows of 8
    valid = b.emit(Op.AND, (b.emit(Op.CMPLE, (c(1), j), np.dtype(bool)),
                           b.emit(Op.CMPLT, (j, c(9)), np.dtype(bool))), np.dtype(bool))
    safe = b.emit(Op.WHERE, (valid, i, c(0)), INDEX)
    hi = b.emit(Op.IDIV, (safe, c(8)), INDEX)
    lo = b.emit(Op.MOD, (safe, c(8)), INDEX)
    flat = b.emit(Op.ADD, (b.emit(Op.MUL, ("o", c(10)), INDEX), j), INDEX)
    b.store("buf0", flat, hi)
    b.store("buf1", flat, lo)
    b.end_loop()
    kernel = b.finish([BufferArg("buf0", INDEX, 160, True), BufferArg("buf1", INDEX, 160, True)])
    assert not any(s.op in (Op.IDIV, Op.MOD) and s.args[0] in (safe, i) for s in _instrs(kernel.body))
    bufs = {"buf0": np.zeros(160, np.int64), "buf1": np.zeros(160, np.int64)}
    run_kernel(kernel, bufs)
    o, jj = (a.ravel() for a in np.meshgrid(np.arange(16), np.arange(10), indexing="ij"))
    ok = (jj >= 1) & (jj < 9)
    want = np.where(ok, o * 8 + jj - 1, 0)
    np.testing.assert_array_equal(bufs["buf0"], want // 8)
    np.testing.assert_array_equal(bufs["buf1"], want % 8)
