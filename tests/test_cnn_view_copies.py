"""One copy of a convolution's input columns serves both matmuls that read it
(NOTE (permuted copies), codegen/view_copies.py), and an elementwise producer is not
recomputed inside an overlapping-window copy (NOTE (copies of overlapping windows),
codegen/fuse.py)."""
import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad.codegen.view import ShapeTracker
from tracegrad.codegen.view_copies import permutation_between

rng = np.random.default_rng(0)


def _im2col_view():
    st = ShapeTracker.from_shape((4, 3, 8, 8)).pad(((0, 0), (0, 0), (1, 1), (1, 1)), 0.0)
    st = st.windows((3, 3), (2, 2), (1, 1))            # (4, 3, 4, 4, 3, 3)
    return st.permute((0, 2, 3, 1, 4, 5)).reshape((64, 27))


def test_permutation_between_finds_the_transpose_of_a_stacked_view():
    cols = _im2col_view()
    assert len(cols.views) > 1
    assert permutation_between(cols, cols.permute((1, 0))) == (1, 0)
    assert permutation_between(cols, cols) == (0, 1)


def test_permutation_between_refuses_other_views():
    cols = _im2col_view()
    assert permutation_between(cols, cols.slice((slice(0, 32), slice(None)))) is None
    assert permutation_between(cols, cols.reshape((27, 64))) is None
    other = ShapeTracker.from_shape((4, 3, 8, 8)).pad(((0, 0), (0, 0), (1, 1), (1, 1)), 1.0)
    other = other.windows((3, 3), (2, 2), (1, 1)).permute((0, 2, 3, 1, 4, 5))
    assert permutation_between(cols, other.reshape((64, 27)).permute((1, 0))) is None
    square = ShapeTracker.from_shape((5, 5))
    assert permutation_between(square, square.permute((1, 0))) == (1, 0)
    assert permutation_between(square, square.slice((slice(None, None, -1),
                                                     slice(None)))) is None


def _copies_of(program, numel):
    """Kernels that write a buffer of ``numel`` elements and compute nothing."""
    return [k for k in program.kernels if not any(op not in ("RESHAPE", "PERMUTE")
                                                    for op in k.ops)
            and any(a.is_output and a.size == numel for a in k.kernel.buffers)]


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (2, 0)])
def test_conv_columns_are_copied_once_for_both_matmuls(stride, padding):
    """In a compiled step (forward and backward in one program) the weight gradient's
    matmul reads the forward's copy of the columns through the gemm's transpose flag."""
    tracegrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 5, 3, stride=stride, padding=padding))
    x = tracegrad.from_numpy(rng.standard_normal((6, 3, 9, 9)).astype(np.float32))

    def step(x):
        model.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        return loss

    compiled = tracegrad.compile(step, fullgraph=True)
    grads = []
    for fn in (step, compiled, compiled):
        fn(x)
        grads.append([p.grad.numpy().copy() for p in model.parameters()])
    for got in grads[1:]:
        for g, want in zip(got, grads[0]):
            np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-6)
    out = (9 + 2 * padding - 3) // stride + 1
    for entry in compiled._cache.values():
        program = entry.forward.program
        assert len(_copies_of(program, 6 * 81 * 27)) == 1        # conv1's (N*81, 3*9)
        assert len(_copies_of(program, 6 * out * out * 36)) == 1  # conv2's (N*L, 4*9)


def test_whole_cnn_step_reads_each_im2col_once():
    from compile_step_testing import make_cnn, make_step
    model = make_cnn()
    opt = tracegrad.optim.SGD(model.parameters(), lr=0.1)
    x = tracegrad.from_numpy(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    y = tracegrad.from_numpy(rng.integers(0, 10, 8))
    step = tracegrad.compile(make_step(model, opt), fullgraph=True)
    step(x, y)
    step(x, y)
    entry = next(iter(step._cache.values()))
    program = entry.forward.program
    # conv1's columns (N*64, 1*9) and conv2's (N*16, 4*9) have the same size here: one
    # copy each (four before: each also copied in the transposed order)
    assert 8 * 64 * 9 == 8 * 16 * 4 * 9
    assert len(_copies_of(program, 8 * 64 * 9)) == 2, [k.ops for k in program.kernels]


def test_elementwise_producer_of_overlapping_windows_is_materialised():
    x = tracegrad.from_numpy(rng.standard_normal((4, 2, 12, 12)).astype(np.float32))
    w = tracegrad.from_numpy(rng.standard_normal((5, 18)).astype(np.float32))

    def fn(x):
        return w @ F.unfold((x * 2.0 + 1.0).relu(), kernel_size=3, stride=1)

    compiled = tracegrad.compile(fn)
    np.testing.assert_allclose(compiled(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-5)
    (entry,) = compiled._cache.values()
    program = entry.forward.program
    # one kernel computes the activation once per element; the columns are a pure copy
    assert len(_copies_of(program, 4 * 18 * 100)) == 1, [k.ops for k in program.kernels]
