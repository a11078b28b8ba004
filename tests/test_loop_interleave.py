"""Loop interleave hints (NOTE (interleaved math loops), NOTE (one vector per float64
sin/cos call) in codegen.render_llvm): a loop that calls float64 sin or cos runs one
vector per iteration (the vectoriser would inline four copies of the call's fast path),
with the same results."""
import numpy as np
import pytest

import tracegrad
from tracegrad.codegen.render_llvm import _with_interleave
from tracegrad.runtime.cpu_program import llvm_sources

COUNT = '!"llvm.loop.interleave.count", i32 '


def _sources(fn, x):
    f = tracegrad.compile(fn)
    got = f(x)
    (entry,) = f._cache.values()
    return "\n".join(llvm_sources(entry.forward_plan).values()), got


@pytest.mark.parametrize("fn", [lambda t: t.sin(), lambda t: t.cos() * 2.0,
                                lambda t: t.sin() + t.cos()])
def test_float64_sin_cos_loops_run_one_vector_per_iteration(fn):
    x = tracegrad.from_numpy(np.linspace(-1e3, 1e3, 4096))
    source, got = _sources(fn, x)
    assert COUNT + "1" in source and COUNT + "4" not in source
    np.testing.assert_allclose(got.numpy(), fn(x).numpy(), rtol=1e-15, atol=1e-15)


def test_each_loop_gets_its_own_count():
    latch = 'br i1 %"{0}.latch", label %"{0}.body", label %"{0}.exit"'
    text = "\n".join(latch.format(v) for v in ("i", "j"))
    out = _with_interleave(text, {"i": 4, "j": 1})
    assert latch.format("i") + ", !llvm.loop !9000" in out
    assert latch.format("j") + ", !llvm.loop !9002" in out
    assert "!9001 = !{" + COUNT + "4}" in out and "!9003 = !{" + COUNT + "1}" in out
