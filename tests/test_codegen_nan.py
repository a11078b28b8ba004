"""NaN propagates through MAXIMUM/MINIMUM and the MAX/MIN reductions exactly as
``np.maximum``/``np.max`` do, in the loop-IR interpreter, the LLVM kernels (compiled ==
eager) and the CUDA C (run on host threads, as in tests/test_render_cuda.py)."""
from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_cuda import launch_config, render_cuda
from tracegrad.codegen.schedule import plan, without_lengths
from codegen_testing import Builder
from test_render_cuda import CXX, HOST_PRELUDE, _host_launcher, _unique, needs_cxx

NAN = np.nan


def rows_with_nans(dtype=np.float32, shape=(5, 37)):
    """Rows with no NaN, NaN first, NaN in the middle, NaN last, and all NaN."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x[1, 0] = NAN
    x[2, shape[1] // 2] = NAN
    x[3, -1] = NAN
    x[4, :] = NAN
    return x


def pairs_with_nans(dtype=np.float32):
    a = np.array([1, NAN, 3, NAN, -np.inf, 0.0, -0.0, np.inf], dtype)
    b = np.array([NAN, 2, -1, NAN, NAN, -0.0, 0.0, NAN], dtype)
    return a, b


REDUCTIONS = {"amax": (lambda t: t.amax(dim=1), lambda x: np.max(x, axis=1)),
              "amin": (lambda t: t.amin(dim=1), lambda x: np.min(x, axis=1)),
              "max_all": (lambda t: t.max(), lambda x: np.max(x)),
              "min_all": (lambda t: t.min(), lambda x: np.min(x)),
              "amax_dim0": (lambda t: t.amax(dim=0), lambda x: np.max(x, axis=0)),
              # a reduction fused with its consumers in a row kernel (softmax's shape)
              "x_minus_rowmax": (lambda t: t - t.amax(dim=1, keepdim=True),
                                 lambda x: x - np.max(x, axis=1, keepdims=True))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_propagate_nan_compiled_and_eager(name, dtype):
    fn, ref = REDUCTIONS[name]
    x = rows_with_nans(dtype)
    expected = ref(x)
    eager = fn(torch.from_numpy(x)).numpy()
    compiled = torch.compile(fn, fullgraph=True)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(np.isnan(eager), np.isnan(expected))
    np.testing.assert_array_equal(compiled, eager)  # NaN positions and values alike


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_binary_extrema_propagate_nan_compiled_and_eager(op, dtype):
    a, b = pairs_with_nans(dtype)
    fn = getattr(torch, op)
    expected = getattr(np, op)(a, b)
    eager = fn(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    compiled = torch.compile(lambda x, y: fn(x, y) * 1.0, fullgraph=True)(
        torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(eager, expected)
    np.testing.assert_array_equal(compiled, expected)


def _programs():
    cases = {}
    b = Builder()
    cases["maximum"] = b.graph(b.op(Op.MAXIMUM, b.input((4, 37)), b.input((4, 37))))
    b = Builder()
    cases["minimum"] = b.graph(b.op(Op.MINIMUM, b.input((4, 37)), b.input((4, 37))))
    for op in (Op.MAX, Op.MIN):
        for axes in ((1,), (0,), (0, 1)):
            b = Builder()
            cases[f"{op.name}_{axes}"] = b.graph(b.op(op, b.input((5, 37)), axes=axes))
    return {name: plan(g) for name, g in cases.items()}


def _kernels(program):
    """Its kernel steps with their lengths constants (NOTE (length parameters)): each
    kernel runs here on its own, without the program's buffers."""
    return [without_lengths(step, program.buffers) for step in program.kernels]


def _inputs(kernel, rng):
    out = {}
    for buf in kernel.buffers:
        if buf.is_output:
            out[buf.name] = np.zeros(buf.size, buf.dtype)
        else:
            x = rng.standard_normal(buf.size).astype(buf.dtype)
            x[rng.random(buf.size) < 0.1] = NAN
            x[:37] = NAN if buf.name == "buf0" else x[:37]  # a whole row of NaN
            out[buf.name] = x
    return out


def test_interpreter_matches_numpy_on_nan():
    rng = np.random.default_rng(1)
    for name, program in _programs().items():
        for step in _kernels(program):
            bufs = _inputs(step.kernel, rng)
            ins = [bufs[b.name].copy() for b in step.kernel.buffers if not b.is_output]
            run_kernel(step.kernel, bufs)
            got = [bufs[b.name] for b in step.kernel.buffers if b.is_output][0]
            if name in ("maximum", "minimum"):
                expected = getattr(np, name)(*ins)
            else:
                x = ins[0].reshape(5, 37)
                axes = eval(name.split("_", 1)[1])
                expected = (np.max if name.startswith("MAX") else np.min)(x, axis=axes).ravel()
            np.testing.assert_array_equal(got, expected, err_msg=name)


@needs_cxx
def test_cuda_source_propagates_nan_on_host_threads(tmp_path):
    runs = []
    for name, program in _programs().items():
        for step in _kernels(program):
            tag = "n" + "".join(c if c.isalnum() else "_" for c in name)
            runs.append(_unique(step.kernel, tag))
    src = HOST_PRELUDE + "\n".join(render_cuda(k) + _host_launcher(k) for k in runs)
    (tmp_path / "nan.cpp").write_text(src)
    lib = tmp_path / "nan.so"
    res = subprocess.run([CXX, "-O0", "-std=c++17", "-shared", "-fPIC", "-pthread", "-w",
                          "-o", str(lib), str(tmp_path / "nan.cpp")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    so = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(2)
    for k in runs:
        got = _inputs(k, rng)
        ref = {name: x.copy() for name, x in got.items()}
        run_kernel(k, ref)
        grid, block = launch_config(k, max_threads=64)
        ptrs = (ctypes.c_void_p * len(k.buffers))(
            *[got[b.name].ctypes.data + b.offset * b.dtype.itemsize for b in k.buffers])
        getattr(so, f"run_{k.name}")(ptrs, ctypes.c_uint(min(grid[0], 3)), ctypes.c_uint(block[0]))
        for b in k.buffers:
            if b.is_output:
                assert np.isnan(ref[b.name]).any(), k.name  # the case really has NaN
                np.testing.assert_array_equal(got[b.name], ref[b.name], err_msg=k.name)
