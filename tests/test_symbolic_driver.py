"""A symbolic program's drivers read their sizes from a table (NOTE (size table) in
runtime/driver_ints.py): once the program exists, a new size compiles nothing, and every
size (inside and far outside the planned range, and 0 and 1, which are specialised)
gives eager's results: forward passes, whole training steps, convolutions, rows."""
import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.compiler import dynamic
from tracegrad.runtime import cblas, cpu_program, cpu_threads, driver
from tracegrad.runtime.lone_call import LoneSplit
from compile_step_testing import assert_same_training, make_cnn, make_step, relative


class CountCompiles:
    """Every source the CPU runtime hands to LLVM (a memory-cache hit counts too)."""

    def __init__(self, monkeypatch):
        self.sources = 0
        real, real_many = cpu_program.compile_llvm, cpu_program.compile_llvm_many

        def one(source, names, **options):
            self.sources += 1
            return real(source, names, **options)

        def many(sources, name, **options):
            self.sources += len(sources)
            return real_many(sources, name, **options)
        monkeypatch.setattr(cpu_program, "compile_llvm", one)
        monkeypatch.setattr(cpu_program, "compile_llvm_many", many)
        monkeypatch.setattr(driver, "compile_llvm_many", many)   # the drivers' batch


def _group(c):
    (group,) = c._groups.values()
    return group


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))


def test_a_new_size_of_the_mlp_compiles_nothing(monkeypatch):
    # a gemm above GEMM_PARALLEL_MIN_MACS (2^22 since main's 8f1e618: 839 rows here) runs
    # split over the pool, from another driver (test_threads_gemm_split): kept whole here
    monkeypatch.setattr(cblas, "GEMM_PARALLEL_MIN_MACS", 1 << 30)
    model = _mlp()

    def fn(x):
        return F.softmax(model(x), -1)
    c = torch.compile(fn)
    count = CountCompiles(monkeypatch)
    with torch.no_grad():
        for b in (8, 16):
            c(torch.randn(b, 100))
        made = count.sources
        assert made > 0 and c.cache_info().misses == 2
        lo, hi = _group(c).fits[0].lo, _group(c).fits[0].hi
        # (above ~2000 rows the pool splits the kernels: another driver, a later test)
        sizes = (24, 3, 2, 57, hi - 1, hi, hi + 1, min(4 * hi + 3, 1500), 1000, 1, 0)
        for b in sizes:
            x = torch.randn(b, 100)
            np.testing.assert_allclose(c(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)
    assert lo == 2
    # 1 and 0 are specialised (two compiles); every other size reuses the drivers
    assert c.cache_info().misses == 4
    assert count.sources <= made + 2 * 8
    # the first two calls' programs are specialised
    served = [e for k, e in c._cache.items() if k[1][0][0][0] not in (0, 1, 8, 16)]
    assert len(served) == len(sizes) - 2
    drivers = {id(e.forward.kernels["driver0"][0]) for e in served}
    assert len(drivers) == 1                    # one compiled driver serves every size
    text = served[0].forward.drivers[0]
    assert "call void %f1(i64 0, i64 %n1," in text and " 100," not in text


def test_no_llvm_compile_at_any_new_size(monkeypatch):
    model = _mlp()
    c = torch.compile(lambda x: F.softmax(model(x), -1))
    with torch.no_grad():
        for b in (8, 16, 24):
            c(torch.randn(b, 100))
        count = CountCompiles(monkeypatch)
        for b in (32, 40, 5, 77, 99, 250, 640):
            c(torch.randn(b, 100))
    assert count.sources == 0


def test_the_driver_table_holds_the_sizes_and_the_text_none():
    c = torch.compile(lambda x, w: (x @ w).relu() @ w.t(), dynamic=True)
    w = torch.randn(6, 6)
    programs = []
    for n in (4, 9, 31):
        x = torch.randn(n, 6)
        np.testing.assert_allclose(c(x, w).numpy(), ((x @ w).relu() @ w.t()).numpy(),
                                   rtol=1e-5, atol=1e-5)
        programs.append(c._cache[next(k for k in c._cache if k[1][0][0][0] == n)].forward)
    served = programs[1:]       # the first call's program is the specialised one
    assert served[0].drivers == served[1].drivers
    tables = [p._calls[0].fns for p in served]   # function addresses, then the sizes
    assert not np.array_equal(*tables)
    assert 9 in tables[0] and 31 in tables[1]


@pytest.mark.parametrize("opt_name, kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                           ("Adam", dict(lr=1e-2))])
def test_whole_training_step_at_every_size(monkeypatch, opt_name, kw):
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 4)) for _ in (0, 1)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [getattr(torch.optim, opt_name)(m.parameters(), **kw) for m in models]
    eager = make_step(models[0], opts[0])
    compiled = torch.compile(make_step(models[1], opts[1]))
    rng = np.random.default_rng(0)
    count = CountCompiles(monkeypatch)
    compiled_at = {}
    for step, b in enumerate((8, 12, 10, 5, 3, 64, 2, 300, 1, 7, 12, 300)):
        x = torch.from_numpy(rng.standard_normal((b, 20)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 4, b))
        before = count.sources
        le, lc = eager(x, y), compiled(x, y)
        compiled_at[b] = compiled_at.get(b, 0) + count.sources - before
        assert relative(le.item(), lc.item()) < 1e-4, (step, b)
        assert_same_training(models[0], opts[0], models[1], opts[1])
    assert "sizes [2, 3, 5, 7, 10, 12, 64, 300]" in compiled.cache_info().symbolic[0]
    # 8 and 12 make the programs and 10 the second trace's (a .grad exists from then
    # on); after that only size 1, which is specialised, compiles anything
    assert {b for b, n in compiled_at.items() if n} <= {8, 12, 10, 1}, compiled_at
    assert compiled_at[1] > 0


def _compiles_per_size(monkeypatch, c, fn, sizes, make, rtol=1e-5, atol=1e-6):
    """Call ``c`` and ``fn`` on ``make(n)`` for each size; compare; return how many
    sources each size handed to LLVM."""
    count = CountCompiles(monkeypatch)
    compiled_at = {}
    for n in sizes:
        x = make(n)
        before = count.sources
        got = c(x)
        compiled_at[n] = count.sources - before
        np.testing.assert_allclose(got.numpy(), fn(x).numpy(), rtol=rtol, atol=atol)
    return compiled_at


def test_conv_net_with_a_symbolic_batch(monkeypatch):
    net = make_cnn()
    c = torch.compile(lambda x: net(x), dynamic=True)
    with torch.no_grad():
        compiled_at = _compiles_per_size(monkeypatch, c, net, (4, 6, 3, 17, 2, 40, 23, 1),
                                         lambda b: torch.randn(b, 1, 8, 8), 1e-4, 1e-5)
    info = c.cache_info()
    assert info.symbolic and info.symbolic[0].startswith("s0"), info
    # from 17 on, im2col's copy is large enough to run through a table
    # (runtime.copy_table): that regime's driver compiles once, then serves 40 and 23
    assert compiled_at[17] == 1, compiled_at
    assert {b for b, n in compiled_at.items() if n} == {4, 17, 1}, compiled_at
    entries = [c._cache[k] for k in c._cache if k[1][0][0][0] in (17, 40, 23)]
    assert len({id(e.forward.kernels["driver0"][0]) for e in entries}) == 1


def test_softmax_rows_over_a_symbolic_row_count(monkeypatch):
    def fn(x):
        return F.softmax(x, -1) * F.log_softmax(x, 0)
    c = torch.compile(fn, dynamic=True)
    compiled_at = _compiles_per_size(monkeypatch, c, fn, (6, 9, 2, 130, 3, 1031, 1),
                                     lambda n: torch.randn(n, 33))
    assert {b for b, n in compiled_at.items() if n} == {6, 1}, compiled_at
    x = torch.randn(0, 33)      # no rows: an empty result, as PyTorch's, compiled too
    assert tuple(fn(x).shape) == tuple(c(x).shape) == (0, 33)


def test_native_gather_and_scatter_add_read_their_sizes_from_the_table(monkeypatch):
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)

    def fn(x, idx, src):
        return torch.gather(x, 1, idx) * 3, torch.scatter_add(x * 2, 1, idx, src) + 1
    c = torch.compile(fn, dynamic=True, fullgraph=True)
    rng = np.random.default_rng(1)
    for b in (5, 8, 3, 21, 2):
        x = torch.from_numpy(rng.standard_normal((b, 10)).astype(np.float32))
        idx = torch.from_numpy(rng.integers(-10, 10, (b, 4)))
        src = torch.from_numpy(rng.standard_normal((b, 4)).astype(np.float32))
        for got, want in zip(c(x, idx, src), fn(x, idx, src)):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert c.cache_info().misses == 1
    program = c._cache[next(k for k in c._cache if k[1][0][0][0] == 21)].forward
    assert "@tg_index" in program.drivers[0] and program.size_table
    bad = torch.from_numpy(np.full((7, 4), 10))   # eager's IndexError, at a new size too
    with pytest.raises(IndexError):
        fn(torch.randn(7, 10), bad, torch.randn(7, 4))
    with pytest.raises(IndexError):
        c(torch.randn(7, 10), bad, torch.randn(7, 4))


def test_transformer_lengths_share_drivers_across_a_thread_split(monkeypatch):
    """From some length on a kernel of the layer is split over threads (natively: the
    driver hands its blocks to the pool, NOTE (symbolic splits)); every other driver
    keeps its text (each reads a table of its own)."""
    monkeypatch.setattr(cpu_threads, "_threads", 2)   # the split needs two threads
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0,
                                       batch_first=True)
    c = torch.compile(layer)
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy(rng.standard_normal((8, t, 64), dtype=np.float32))
          for t in range(40, 58)]
    with torch.no_grad():
        for x in xs[:2]:
            c(x)
        count = CountCompiles(monkeypatch)
        for x in xs[2:]:
            np.testing.assert_allclose(c(x).numpy(), layer(x).numpy(), rtol=1e-4, atol=1e-4)
    # a symbolic driver's gemms always have a trampoline (their chunk count, 1 below the
    # threshold, is in the size table); a split kernel adds one of its own, or, alone
    # between two other calls, is a lone split (NOTE (lone calls)) with no driver at all
    splits = {(sum(d.count("define internal void @tg_tramp") for d in e.forward.drivers),
               sum(isinstance(call, LoneSplit) for call in e.forward._calls))
              for e in c._for_mode()._cache.values()}
    assert c.cache_info().misses == 2 and len(splits) == 2, splits   # a split happened
    assert count.sources <= 1


def test_alternating_sizes_are_lookups_and_old_sizes_are_dropped(monkeypatch):
    model = _mlp()

    def fn(x):
        return F.softmax(model(x), -1)
    c = torch.compile(fn)
    monkeypatch.setattr(dynamic.SymbolicGroup, "MAX_KEPT", 3)
    made = []
    real = dynamic._Fit.instance
    monkeypatch.setattr(dynamic._Fit, "instance",
                        lambda self, traced, n: made.append(n) or real(self, traced, n))
    xs = {b: torch.randn(b, 100) for b in (8, 16, 32, 7, 50, 13)}
    with torch.no_grad():
        c(xs[8]), c(xs[16])
        count = CountCompiles(monkeypatch)
        for _ in range(3):   # a full and a short last batch, alternating
            for b in (32, 7):
                np.testing.assert_allclose(c(xs[b]).numpy(), fn(xs[b]).numpy(), rtol=1e-5,
                                           atol=1e-6)
        assert made == [32, 7]
        for b in (50, 13, 32):   # 3 kept: 32 was dropped, and is made again (no LLVM)
            np.testing.assert_allclose(c(xs[b]).numpy(), fn(xs[b]).numpy(), rtol=1e-5,
                                       atol=1e-6)
    assert made == [32, 7, 50, 13, 32]
    kept = sorted(k[1][0][0][0] for k in c._cache)
    assert kept == [8, 13, 16, 32, 50], kept   # 8 and 16: the specialised first two
    assert count.sources == 0 and c.cache_info().misses == 2


def test_driver_ints_docstring_examples_run():
    import doctest

    from tracegrad.runtime import driver_ints
    result = doctest.testmod(driver_ints)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("int_bits", [32, 64])
def test_a_table_driver_is_valid_llvm_for_every_call_kind(int_bits):
    import llvmlite.binding as llvm

    from tracegrad.runtime.copy_table import TableCopy
    from tracegrad.runtime.driver import GemmCall, GemmOperand, KernelCall, driver_source
    from tracegrad.runtime.driver_ints import SizeTable
    from tracegrad.runtime.native_index import IndexCall
    f32 = np.dtype(np.float32)
    calls = [KernelCall(0, 37, (0, 1)),
             GemmCall(1, f32, 5, 6, 7, GemmOperand(0, 8, False, 7), GemmOperand(1, 0, True, 7),
                      GemmOperand(2, 0, False, 6), int_bits),
             IndexCall("scatter_add", f32, np.dtype(np.int64), 4, 1, 1, 10, (0, 4), (1, 0),
                       (2, 0), 3, 9, 1, (10, 1, 1)),
             TableCopy(0, 1, 2, 4096, f32, 0.0)]
    table = SizeTable(3)
    text = driver_source(calls, table)
    llvm.parse_assembly(text).verify()
    assert 37 in table.values and 4096 in table.values and 8 in table.values
    # every size is a load, none a literal
    assert "i64 37" not in text and "i64 4096" not in text and "i64 8)" not in text
    assert f"i{int_bits} 5, i{int_bits} 6, i{int_bits} 7" not in text
    assert f"i{int_bits} 5, i{int_bits} 6, i{int_bits} 7" in driver_source(calls)
    assert ("trunc i64" in text) == (int_bits == 32)
