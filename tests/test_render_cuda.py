"""CUDA C renderer: text structure, nvcc --ptx on every primitive and fused kernel, and
the grid layout's meaning checked on the host (the source built as C++ against a small
stand-in for the CUDA built-ins, run through ctypes, compared with the IR interpreter).

No GPU is needed: nvcc tests skip where nvcc is missing, host tests where g++ is.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
import subprocess

import numpy as np
import pytest

import tracegrad
from tracegrad.codegen.interp import run_kernel
from tracegrad.codegen.loop_ir import BufferArg, KernelBuilder
from tracegrad.codegen.ops import Op
from tracegrad.codegen.render_cuda import (kernel_layout, launch_config, literal, render_cuda,
                                           render_cuda_program)
from tracegrad.codegen.schedule import plan, without_lengths
from codegen_testing import Builder
from test_codegen_fusion import gelu_tanh, layer_norm, log_softmax, softmax


def _find_nvcc():
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


NVCC = _find_nvcc()
CXX = shutil.which("g++")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")
needs_cxx = pytest.mark.skipif(CXX is None, reason="g++ not found")

FLOATS = ("float32", "float64")
UNARY_FLOAT = ["NEG", "EXP", "LOG", "SIN", "COS", "SQRT", "RECIP", "TANH", "SIGMOID", "ERF",
               "ABS", "SIGN", "FLOOR", "CEIL", "ROUND", "LOG1P", "EXPM1",
               "EXP2", "LOG2", "LOG10"]
BINARY_FLOAT = ["ADD", "SUB", "MUL", "DIV", "POW", "MAXIMUM", "MINIMUM", "FMOD",
                "CMPLT", "CMPLE", "CMPEQ", "CMPNE"]
BINARY_INT = ["ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "CMPLT", "CMPEQ", "CMPNE",
              "AND", "OR", "XOR"]
CASTS = [("float32", "float64"), ("float32", "int32"), ("float32", "int64"), ("float32", "bool"),
         ("float32", "uint8"), ("float64", "float32"), ("int64", "float32"), ("int32", "int64"),
         ("bool", "float32"), ("uint8", "float32"), ("int64", "bool")]
# domains for the host check: "pos" keeps LOG/SQRT/POW/unsigned casts in range
POSITIVE = {"LOG", "SQRT", "POW", "LOG1P"}


def _graph_cases() -> dict[str, tuple]:
    """name -> (graph, domain): one small graph per primitive, view and fused composite."""
    cases = {}

    def add(name, fn, domain="any"):
        b = Builder()
        cases[name] = (b.graph(*fn(b)), domain)

    for dt in FLOATS:
        for op in UNARY_FLOAT:
            add(f"{op}_{dt}", lambda b, op=op, dt=dt: [b.op(Op[op], b.input((5, 7), dt))],
                "pos" if op in POSITIVE else "any")
        for op in BINARY_FLOAT:
            add(f"{op}_{dt}", lambda b, op=op, dt=dt: [
                b.op(Op[op], b.input((5, 7), dt), b.input((7,), dt))],
                "pos" if op in POSITIVE else "any")
    for dt in ("int32", "int64"):
        for op in ("NEG", "ABS", "SIGN", "NOT"):
            add(f"{op}_{dt}", lambda b, op=op, dt=dt: [b.op(Op[op], b.input((9,), dt))])
        for op in BINARY_INT:
            add(f"{op}_{dt}", lambda b, op=op, dt=dt: [
                b.op(Op[op], b.input((4, 6), dt), b.input((4, 6), dt))],
                "pos" if op in POSITIVE else "any")
    for op in ("AND", "OR", "XOR"):
        add(f"{op}_bool", lambda b, op=op: [b.op(Op[op], b.input((11,), "bool"),
                                                 b.input((11,), "bool"))])
    add("NOT_bool", lambda b: [b.op(Op.NOT, b.input((11,), "bool"))])
    add("SCALAR_CONST", lambda b: [b.add(b.mul(b.input((6,)), b.const(float("inf"))),
                                         b.const(-2.5))])
    add("WHERE", lambda b: [b.where(b.input((3, 4), "bool"), b.input((3, 4)), b.input((4,)))])
    add("WHERE_cmp", lambda b: (lambda x: [b.where(b.cmplt(b.const(0.0), x), x,
                                                   b.mul(x, b.const(0.1)))])(b.input((40,))))
    for src, dst in CASTS:
        # NOTE: NaN and out-of-range floats cast to an integer are undefined in C
        domain = "pos" if dst.startswith("u") else "finite" if dst.startswith("int") else "any"
        add(f"CAST_{src}_{dst}", lambda b, s=src, d=dst: [b.cast(b.input((13,), s), dtype=d)],
            domain)
    for op in ("SUM", "MAX", "MIN", "PROD"):
        for axes, keep in (((1,), False), ((0,), True), ((0, 1), False)):
            add(f"{op}_{axes}_{keep}", lambda b, op=op, axes=axes, keep=keep: [
                b.op(Op[op], b.input((6, 50)), axes=axes, keepdim=keep)])
        add(f"{op}_int64", lambda b, op=op: [b.op(Op[op], b.input((3, 5), "int64"), axes=(1,))])
        add(f"{op}_wide_rows", lambda b, op=op: [b.op(Op[op], b.input((3, 700)), axes=(1,))])
    add("SUM_bool", lambda b: [b.sum(b.input((4, 40), "bool"), axes=(1,))])
    add("MAX_bool", lambda b: [b.max(b.input((4, 40), "bool"), axes=(0, 1))])
    add("SUM_float64_3d", lambda b: [b.sum(b.input((2, 3, 40), "float64"), axes=(0, 2))])
    add("permute", lambda b: [b.permute(b.input((3, 4, 5)), perm=(2, 0, 1))])
    add("slice_neg_step", lambda b: [b.slice(b.input((6, 8)), index=(slice(1, 5), slice(None, None, -2)))])
    add("pad", lambda b: [b.pad(b.input((3, 4)), pads=((1, 2), (0, 3)), value=0.5)])
    add("pad_crop", lambda b: [b.exp(b.pad(b.input((5, 6)), pads=((-1, 1), (2, -2)), value=0.0))])
    add("expand", lambda b: [b.add(b.expand(b.input((1, 5)), shape=(4, 5)), b.input((4, 5)))])
    add("reshape_permute", lambda b: [b.reshape(b.permute(b.input((4, 6)), perm=(1, 0)),
                                                shape=(3, 8))])
    add("softmax", lambda b: [softmax(b, b.input((6, 130)))])
    add("softmax_short_rows", lambda b: [softmax(b, b.input((6, 7)))])
    add("log_softmax", lambda b: [log_softmax(b, b.input((5, 90)))])
    add("layer_norm", lambda b: [layer_norm(b, b.input((7, 64)), b.input((64,)), b.input((64,)), 64)])
    add("gelu_tanh", lambda b: [gelu_tanh(b, b.input((100,)))])
    return cases


CASES = _graph_cases()


def _programs():
    return {name: (plan(g), domain) for name, (g, domain) in CASES.items()}


@pytest.fixture(scope="module")
def programs():
    return _programs()


def _mlp_programs():
    def mlp(x, w1, w2, y):
        return ((x.mm(w1).clamp(min=0).mm(w2) - y) ** 2).sum()
    rng = np.random.default_rng(0)
    args = [tracegrad.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=rg)
            for s, rg in (((64, 100), False), ((100, 20), True), ((20, 10), True), ((64, 10), False))]
    report = tracegrad.compile(mlp).explain(*args)
    return report


@pytest.fixture(scope="module")
def mlp_report():
    return _mlp_programs()


def _unique(kernel, tag):
    return dataclasses.replace(kernel, name=f"{tag}_{kernel.name}")


def _nvcc(tmp_path, sources: list[str]) -> list[str]:
    """PTX of each source (one nvcc process each, run together); warnings are errors."""
    procs = []
    for i, source in enumerate(sources):
        cu = tmp_path / f"unit{i}.cu"
        cu.write_text(source)
        procs.append(subprocess.Popen(
            [NVCC, "--ptx", "-arch=sm_90", "-Werror", "all-warnings", str(cu),
             "-o", str(tmp_path / f"unit{i}.ptx")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-4000:]
    return [(tmp_path / f"unit{i}.ptx").read_text() for i in range(len(sources))]


# -- text structure ------------------------------------------------------------------------


def _int_pow_kernel():
    # integer POW is not lowered today (the LLVM renderer lacks it); the CUDA table has it
    b = KernelBuilder("ipow", outer=8)
    x = b.emit(Op.LOAD, ("buf0", "o"), "int64")
    y = b.emit(Op.LOAD, ("buf1", "o"), "int64")
    b.store("buf2", "o", b.emit(Op.POW, (x, y), "int64"))
    return b.finish([BufferArg("buf0", np.dtype("int64"), 8, False),
                     BufferArg("buf1", np.dtype("int64"), 8, False),
                     BufferArg("buf2", np.dtype("int64"), 8, True)])


def _copy_kernel(outer=1000, dtype="float32"):
    b = KernelBuilder("k", outer=outer)
    b.store("buf1", "o", b.emit(Op.LOAD, ("buf0", "o"), dtype))
    return b.finish([BufferArg("buf0", np.dtype(dtype), outer, False),
                     BufferArg("buf1", np.dtype(dtype), outer, True)])


def test_elementwise_is_a_grid_stride_loop(programs):
    k = programs["EXP_float32"][0].kernels[0].kernel
    src = render_cuda(k)
    assert kernel_layout(k) == "grid"
    assert f'extern "C" __global__ void {k.name}(const float* __restrict__ buf0, ' \
           f'float* __restrict__ buf1)' in src
    assert ("for (long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x; o < 35LL; "
            "o += (long long)gridDim.x * blockDim.x)") in src
    assert "expf(" in src and "__expf" not in src
    assert src == render_cuda(k)  # deterministic: the source is a cache key


def test_every_pointer_is_restrict_and_inputs_are_const(programs):
    for name, (p, _) in programs.items():
        for step in p.kernels:
            step = without_lengths(step, p.buffers)   # as CudaProgram renders it
            src = render_cuda(step.kernel)
            sig = src[src.index('extern "C"'):].split(")", 1)[0]
            params = sig.split("(", 1)[1].split(", ")
            assert len(params) == len(step.kernel.buffers), name
            for param, buf in zip(params, step.kernel.buffers):
                assert param.endswith(f"* __restrict__ {buf.name}"), (name, param)
                assert param.startswith("const ") != buf.is_output, (name, param)


def test_bool_is_unsigned_char_in_memory_and_int64_long_long(programs):
    src = render_cuda(programs["AND_bool"][0].kernels[0].kernel)
    assert "const unsigned char* __restrict__ buf0" in src and "(unsigned char)" in src
    src = render_cuda(programs["SUM_int64"][0].kernels[0].kernel)
    assert "long long* __restrict__" in src


def test_row_kernels_reduce_across_a_block(programs):
    k = programs["softmax"][0].kernels[0].kernel
    src = render_cuda(k)
    assert kernel_layout(k) == "block_rows"
    assert "for (long long o = blockIdx.x; o < 6LL; o += gridDim.x)" in src
    assert "r0 = threadIdx.x; r0 < 130LL; r0 += blockDim.x" in src
    assert src.count("__shfl_down_sync(0xffffffffu") == 1 and src.count("= tg_shfl_down(") == 4
    assert "__syncthreads()" in src
    assert launch_config(k) == ((6, 1, 1), (256, 1, 1))
    # short rows stay one thread per row
    short = programs["softmax_short_rows"][0].kernels[0].kernel
    assert kernel_layout(short) == "grid" and "__shfl" not in render_cuda(short)
    # either layout can be forced
    assert "__shfl" not in render_cuda(k, layout="grid")
    assert launch_config(short, layout="block_rows")[1] == (32, 1, 1)


def test_per_row_stores_come_from_thread_zero(programs):
    src = render_cuda(programs["SUM_(1,)_False"][0].kernels[0].kernel)
    assert "if (threadIdx.x == 0) buf1[o] = " in src


def test_launch_config():
    assert launch_config(_copy_kernel(1000)) == ((4, 1, 1), (256, 1, 1))
    assert launch_config(_copy_kernel(5)) == ((1, 1, 1), (32, 1, 1))
    assert launch_config(_copy_kernel(1000), max_threads=128) == ((8, 1, 1), (128, 1, 1))
    assert launch_config(_copy_kernel(10**8))[0] == (65535, 1, 1)
    with pytest.raises(ValueError):
        launch_config(_copy_kernel(), max_threads=100)


def test_literals_are_exact():
    assert literal(0.1, "float32") == "0.10000000149011612f"
    assert literal(float("nan"), "float32") == "__int_as_float(0x7fffffff)"
    assert literal(float("inf"), "float32") == "__int_as_float(0x7f800000)"
    assert literal(-2**31, "int32") == "(-2147483647 - 1)"
    assert literal(True, "bool") == "true"
    assert literal(3, "int64") == "3LL"


def test_small_index_division_is_32_bit_and_large_stays_64():
    def div_kernel(outer):
        b = KernelBuilder("k", outer=outer)
        q = b.emit(Op.IDIV, ("o", b.const(7, "int64")), "int64")
        b.store("buf1", "o", b.emit(Op.LOAD, ("buf0", q), "float32"))
        return b.finish([BufferArg("buf0", np.dtype("float32"), outer, False),
                         BufferArg("buf1", np.dtype("float32"), outer, True)])
    assert "(long long)((unsigned)o / (unsigned)v0)" in render_cuda(div_kernel(1000))
    assert "(o / v0)" in render_cuda(div_kernel(2**33))


def test_render_cuda_program_names_every_kernel(mlp_report):
    for program in (mlp_report.forward, mlp_report.backward):
        pairs = render_cuda_program(program)
        assert [n for n, _ in pairs] == [k.name for k in program.kernels]
        for name, src in pairs:
            assert f"void {name}(" in src


# -- nvcc ------------------------------------------------------------------------------------


@needs_nvcc
def test_every_case_compiles_with_nvcc_in_one_batch(programs, mlp_report, tmp_path):
    parts, count = [], 0
    for tag, (p, _) in programs.items():
        tag = "c" + "".join(ch if ch.isalnum() else "_" for ch in tag)
        for step in p.kernels:
            step = without_lengths(step, p.buffers)   # as CudaProgram renders it
            parts.append(render_cuda(_unique(step.kernel, tag)))
            if kernel_layout(step.kernel) == "block_rows":
                parts.append(render_cuda(_unique(step.kernel, tag + "_grid"), layout="grid"))
            count += 1
    for stage, program in (("fwd", mlp_report.forward), ("bwd", mlp_report.backward)):
        for step in program.kernels:
            step = without_lengths(step, program.buffers)
            parts.append(render_cuda(_unique(step.kernel, "mlp_" + stage)))
            count += 1
    parts.append(render_cuda(_int_pow_kernel()))
    ptx = _nvcc(tmp_path, ["\n".join(parts)])[0]
    assert ptx.count(".entry") == len(parts) and count > 120


@needs_nvcc
def test_single_kernel_files_compile_on_their_own(programs, mlp_report, tmp_path):
    # each translation unit is self-contained: helpers included, nothing from elsewhere
    sources = [render_cuda(programs["layer_norm"][0].kernels[0].kernel)]
    sources += [src for _, src in render_cuda_program(mlp_report.backward)][:1]
    for ptx in _nvcc(tmp_path, sources):
        assert ptx.count(".entry") == 1


def test_mlp_forward_and_backward_have_kernels(mlp_report):
    assert len(mlp_report.forward.kernels) == 2 and mlp_report.backward.kernels


# -- host check: CUDA source run as C++ threads ------------------------------------------
# Each kernel runs in its own layout with launch_config's geometry (capped): blocks one
# after another, the threads of a block as OS threads; __syncthreads is a block barrier
# and __shfl_down_sync a per-warp exchange between two warp barriers.

HOST_PRELUDE = r"""
#include <math.h>
#include <string.h>
#include <pthread.h>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
struct tg_dim3 { unsigned x, y, z; };
static thread_local tg_dim3 threadIdx = {0, 0, 0};
static tg_dim3 blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
static pthread_barrier_t tg_block_bar, tg_warp_bar[32];
static unsigned long long tg_lanes[1024];
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
static inline void __syncthreads() { pthread_barrier_wait(&tg_block_bar); }
template <typename T> T __shfl_down_sync(unsigned, T v, int s) {
  unsigned t = threadIdx.x;
  memcpy(&tg_lanes[t], &v, sizeof(T));
  pthread_barrier_wait(&tg_warp_bar[t / 32]);
  T r = v;
  if (t % 32 + s < 32) memcpy(&r, &tg_lanes[t + s], sizeof(T));
  pthread_barrier_wait(&tg_warp_bar[t / 32]);
  return r;
}
typedef void (*tg_body)(void**);
struct tg_thread_arg { unsigned t; tg_body f; void** a; };
static void* tg_thread(void* p) {
  tg_thread_arg* arg = (tg_thread_arg*)p;
  threadIdx.x = arg->t;
  arg->f(arg->a);
  return 0;
}
static void tg_launch(unsigned grid, unsigned block, tg_body f, void** a) {
  gridDim.x = grid; blockDim.x = block;
  pthread_barrier_init(&tg_block_bar, 0, block);
  for (unsigned w = 0; w < (block + 31) / 32; w++) pthread_barrier_init(&tg_warp_bar[w], 0, 32);
  pthread_t ts[1024];
  tg_thread_arg args[1024];
  for (unsigned b = 0; b < grid; b++) {
    blockIdx.x = b;
    for (unsigned t = 0; t < block; t++) {
      args[t] = {t, f, a};
      pthread_create(&ts[t], 0, tg_thread, &args[t]);
    }
    for (unsigned t = 0; t < block; t++) pthread_join(ts[t], 0);
  }
  pthread_barrier_destroy(&tg_block_bar);
  for (unsigned w = 0; w < (block + 31) / 32; w++) pthread_barrier_destroy(&tg_warp_bar[w]);
}
"""


def _host_launcher(kernel) -> str:
    from tracegrad.codegen.render_cuda import mem_ctype
    args = ", ".join(f"({'' if b.is_output else 'const '}{mem_ctype(b.dtype)}*)a[{i}]"
                     for i, b in enumerate(kernel.buffers))
    return (f"static void body_{kernel.name}(void** a) {{ {kernel.name}({args}); }}\n"
            f'extern "C" void run_{kernel.name}(void** a, unsigned grid, unsigned block) '
            f"{{ tg_launch(grid, block, body_{kernel.name}, a); }}\n")


def _random_buffer(rng, buf, domain):
    n, dt = buf.size, buf.dtype
    if dt.kind == "b":
        return rng.random(n) < 0.5
    if dt.kind == "f":
        x = rng.uniform(0.1, 4.0, n) if domain == "pos" else rng.standard_normal(n) * 3
        if domain == "any" and n > 4:
            x[:3] = [0.0, -0.0, np.nan]
        return x.astype(dt)
    low = 0 if domain == "pos" or dt.kind == "u" else -3
    return rng.integers(low, 4, n).astype(dt)


@needs_cxx
def test_cuda_source_matches_the_interpreter_on_host_threads(programs, tmp_path):
    """The op table and both layouts mean what the IR means: every case, run as C++
    threads with its launch geometry (grid capped at 3 blocks so the grid-stride loops
    turn), equals the loop-IR interpreter."""
    runs = []
    for tag, (p, domain) in programs.items():
        tag = "c" + "".join(ch if ch.isalnum() else "_" for ch in tag)
        for step in p.kernels:
            step = without_lengths(step, p.buffers)   # as CudaProgram renders it
            layouts = [None] + (["grid"] if kernel_layout(step.kernel) == "block_rows" else [])
            for layout in layouts:
                k = _unique(step.kernel, tag + ("_" + layout if layout else ""))
                runs.append((k, layout, domain))
    src = HOST_PRELUDE + "\n".join(render_cuda(k, layout) + _host_launcher(k) for k, layout, _ in runs)
    (tmp_path / "host.cpp").write_text(src)
    lib = tmp_path / "host.so"
    res = subprocess.run([CXX, "-O0", "-std=c++17", "-shared", "-fPIC", "-pthread", "-w",
                          "-o", str(lib), str(tmp_path / "host.cpp")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    so = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(0)
    for k, layout, domain in runs:
        ref, got = {}, {}
        for buf in k.buffers:
            x = (np.zeros(buf.size, buf.dtype) if buf.is_output
                 else _random_buffer(rng, buf, domain))
            ref[buf.name], got[buf.name] = x.copy(), x.copy()
        with np.errstate(all="ignore"):
            run_kernel(k, ref)
        grid, block = launch_config(k, max_threads=64, layout=layout)
        # the launch contract: each pointer is the buffer's address plus BufferArg.offset
        ptrs = (ctypes.c_void_p * len(k.buffers))(*[got[b.name].ctypes.data
                                                    + b.offset * b.dtype.itemsize
                                                    for b in k.buffers])
        getattr(so, f"run_{k.name}")(ptrs, ctypes.c_uint(min(grid[0], 3)), ctypes.c_uint(block[0]))
        for buf in k.buffers:
            if buf.is_output:
                # block reductions reassociate; everything else is one op at a time
                tol = 1e-5 if buf.dtype == np.float32 else 1e-12
                np.testing.assert_allclose(got[buf.name], ref[buf.name], rtol=tol, atol=tol,
                                           err_msg=k.name)


def _matmul_sources():
    from tracegrad.codegen.render_cuda_matmul import render_cuda_matmul
    return [("mm_f32", 70, 50, 33, "float32"), ("mm_f64", 64, 130, 16, "float64"),
            ("mm_tiny", 1, 1, 1, "float32")], render_cuda_matmul


@needs_nvcc
def test_tiled_matmul_compiles(tmp_path):
    cases, render = _matmul_sources()
    ptx = _nvcc(tmp_path, ["\n".join(render(*c) for c in cases)])[0]
    assert ptx.count(".entry") == len(cases) and ".shared" in ptx


@needs_cxx
def test_tiled_matmul_matches_numpy_on_host_threads(tmp_path):
    from tracegrad.codegen.render_cuda_matmul import matmul_launch_config
    cases, render = _matmul_sources()
    src = HOST_PRELUDE
    for name, m, n, k, dt in cases:
        t = "float" if dt == "float32" else "double"
        src += render(name, m, n, k, dt)
        src += (f"static void body_{name}(void** p) {{ {name}((const {t}*)p[0], (const {t}*)p[1], "
                f"({t}*)p[2]); }}\n"
                f'extern "C" void run_{name}(void** p, unsigned g, unsigned b) '
                f"{{ tg_launch(g, b, body_{name}, p); }}\n")
    (tmp_path / "mm.cpp").write_text(src)
    res = subprocess.run([CXX, "-O0", "-std=c++17", "-shared", "-fPIC", "-pthread", "-w",
                          "-o", str(tmp_path / "mm.so"), str(tmp_path / "mm.cpp")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    so = ctypes.CDLL(str(tmp_path / "mm.so"))
    rng = np.random.default_rng(1)
    for name, m, n, k, dt in cases:
        a, b = rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)
        c = np.full((m, n), np.nan, dtype=dt)
        grid, block = matmul_launch_config(m, n)
        ptrs = (ctypes.c_void_p * 3)(a.ctypes.data, b.ctypes.data, c.ctypes.data)
        # grid of 1: the grid-stride loop walks every tile
        getattr(so, f"run_{name}")(ptrs, ctypes.c_uint(1), ctypes.c_uint(block[0]))
        tol = 1e-5 if dt == "float32" else 1e-12
        np.testing.assert_allclose(c, a @ b, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sin_cos_use_the_full_range_library_functions(dtype):
    # NOTE (math accuracy) in render_cuda: sinf/cosf (and sin/cos) reduce exactly over the
    # whole range without -use_fast_math; __sinf is only accurate near [-pi, pi]
    b = KernelBuilder("k", outer=8)
    x = b.emit(Op.LOAD, ("buf0", "o"), dtype)
    b.store("buf1", "o", b.emit(Op.ADD, (b.emit(Op.SIN, (x,), dtype),
                                         b.emit(Op.COS, (x,), dtype)), dtype))
    src = render_cuda(b.finish([BufferArg("buf0", np.dtype(dtype), 8, False),
                                BufferArg("buf1", np.dtype(dtype), 8, True)]))
    f = "f" if dtype == "float32" else ""
    assert f"sin{f}(" in src and f"cos{f}(" in src and "__sin" not in src and "__cos" not in src
