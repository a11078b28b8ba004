"""CUDA C for matmul: a generated tiled kernel (on the CPU, matmul is an extern BLAS call).

Shared-memory tiles, several outputs per thread; see ``render_cuda_matmul``.
"""
from __future__ import annotations

import numpy as np

from .render_cuda import _c_name, ctype, literal

_MM_TILE, _MM_K, _MM_SIDE = 64, 16, 16   # 64x64 output tile, k-steps of 16, 16x16 threads


def render_cuda_matmul(name: str, m: int, n: int, k: int, dtype="float32",
                       trans_a: bool = False, trans_b: bool = False) -> str:
    """CUDA C of ``c[m, n] = a[m, k] @ b[k, n]`` (row-major, contiguous; with ``trans_a``
    ``a`` is stored as its transpose ``[k, m]``, with ``trans_b`` ``b`` as ``[n, k]``, the
    operands of a matmul's backward, read without a copy): a 64x64 tile of
    ``c`` per block (grid-stride over tiles), k-steps of 16 staged in shared memory, each
    of the 256 threads accumulating 4x4 outputs strided by 16 (conflict-free shared reads,
    coalesced stores).  Edges are bounds-checked.  Launch with ``matmul_launch_config``;
    ``blockDim.x`` must be 256.  No epilogue fusion yet."""
    t = ctype(dtype)
    per = _MM_TILE // _MM_SIDE
    zero = literal(0, dtype)
    tiles_n = -(-n // _MM_TILE)
    tiles = -(-m // _MM_TILE) * tiles_n
    name = _c_name(name)
    a_at = f"a[gk * {m}LL + gm]" if trans_a else f"a[gm * {k}LL + gk]"
    b_at = f"b[gn * {k}LL + gk]" if trans_b else f"b[gk * {n}LL + gn]"
    stored = f"{'a^T' if trans_a else 'a'}, {'b^T' if trans_b else 'b'} stored"
    return f"""\
// tracegrad matmul {name}: c[{m}, {n}] = a[{m}, {k}] @ b[{k}, {n}] ({np.dtype(dtype).name}; {stored})
extern "C" __global__ void {name}(const {t}* __restrict__ a, const {t}* __restrict__ b,
                                 {t}* __restrict__ c) {{
  __shared__ {t} as[{_MM_K}][{_MM_TILE + 1}];  // +1: transposed stores hit distinct banks
  __shared__ {t} bs[{_MM_K}][{_MM_TILE}];
  const int tr = threadIdx.x / {_MM_SIDE}, tc = threadIdx.x % {_MM_SIDE};
  for (long long tile = blockIdx.x; tile < {tiles}LL; tile += gridDim.x) {{
    const long long m0 = (tile / {tiles_n}LL) * {_MM_TILE}, n0 = (tile % {tiles_n}LL) * {_MM_TILE};
    {t} acc[{per}][{per}];
    for (int i = 0; i < {per}; i++)
      for (int j = 0; j < {per}; j++) acc[i][j] = {zero};
    for (long long k0 = 0; k0 < {k}LL; k0 += {_MM_K}) {{
      for (int e = threadIdx.x; e < {_MM_TILE * _MM_K}; e += blockDim.x) {{
        const int r = e / {_MM_K}, kk = e % {_MM_K};
        const long long gm = m0 + r, gk = k0 + kk;
        as[kk][r] = (gm < {m}LL && gk < {k}LL) ? {a_at} : {zero};
      }}
      for (int e = threadIdx.x; e < {_MM_TILE * _MM_K}; e += blockDim.x) {{
        const int kk = e / {_MM_TILE}, cc = e % {_MM_TILE};
        const long long gk = k0 + kk, gn = n0 + cc;
        bs[kk][cc] = (gk < {k}LL && gn < {n}LL) ? {b_at} : {zero};
      }}
      __syncthreads();
      for (int kk = 0; kk < {_MM_K}; kk++) {{
        {t} av[{per}], bv[{per}];
        for (int i = 0; i < {per}; i++) av[i] = as[kk][tr + {_MM_SIDE} * i];
        for (int j = 0; j < {per}; j++) bv[j] = bs[kk][tc + {_MM_SIDE} * j];
        for (int i = 0; i < {per}; i++)
          for (int j = 0; j < {per}; j++) acc[i][j] += av[i] * bv[j];
      }}
      __syncthreads();
    }}
    for (int i = 0; i < {per}; i++) {{
      for (int j = 0; j < {per}; j++) {{
        const long long gm = m0 + tr + {_MM_SIDE} * i, gn = n0 + tc + {_MM_SIDE} * j;
        if (gm < {m}LL && gn < {n}LL) c[gm * {n}LL + gn] = acc[i][j];
      }}
    }}
  }}
}}
"""


def matmul_launch_config(m: int, n: int, max_blocks: int = 65535):
    """``(grid, block)`` for ``render_cuda_matmul``: one block of 256 threads per tile."""
    tiles = -(-m // _MM_TILE) * -(-n // _MM_TILE)
    return (max(min(tiles, max_blocks), 1), 1, 1), (_MM_SIDE * _MM_SIDE, 1, 1)
