"""Symbolic programs that returned wrong answers (found by fuzzing sizes around the probes):
compiled == eager at every size, above and below the sizes a fit planned.

NOTE (planned range) in ``tracegrad/compiler/dynamic.py``: the planner's index
simplifications compare value ranges with constants, so a body fitted at a few sizes was
trusted at sizes where such a comparison flips.  ``CHECK_INSTANCES`` stays off here: these
tests check what users get."""
import numpy as np
import pytest

import tracegrad as torch


def _check_sizes(fn, shape_at, sizes, dynamic=None):
    c = torch.compile(fn, dynamic=dynamic)
    for n in sizes:
        x = torch.randn(*shape_at(n))
        np.testing.assert_allclose(c(x).numpy(), fn(x).numpy(), rtol=1e-6, atol=1e-6,
                                   err_msg=f"s0={n}")


def flat_prefix_of_transpose(x):
    # (16, s0) -> (s0, 16) view -> flat index L: reads x[L % 16, L // 16], L < s0
    return x.t().reshape(-1)[: x.shape[1]] * 2


def test_range_check_that_holds_at_the_probes_flips_above_them():
    # fitted at 2, 3, 5, 8 (all below 16): L // 16 was folded to 0, so s0 = 17 and up read
    # out of bounds (before: s0=17 off by 2.06, s0=20 off by 3.7e20)
    _check_sizes(flat_prefix_of_transpose, lambda n: (16, n), [2, 3, 20, 33, 17, 64, 500])


def constant_prefix_of_transpose(x):
    # (s0, 3) -> (3, s0) view -> the first 5 flat elements: (L // s0, L % s0), L < 5
    return x.t().reshape(-1)[:5] * 2


@pytest.mark.parametrize("dynamic", [None, True])
def test_range_check_that_holds_at_the_probes_flips_below_them(dynamic):
    # fitted at sizes >= 5: L // s0 was folded to 0, wrong at s0 = 3, 4 (before: off by
    # 2.8e8 and 1.3e23)
    _check_sizes(constant_prefix_of_transpose, lambda n: (n, 3), [8, 5, 2, 3, 4, 20, 6, 7],
                 dynamic)


def test_constant_prefix_of_a_wider_transpose_below_the_probes():
    # before: s0 = 3, 4, 5 wrong (off by 1.17, nan, 0.76) with dynamic=True from size 2
    _check_sizes(lambda x: x.t().reshape(-1)[:7] + 1, lambda n: (n, 6),
                 [2, 3, 20, 33, 64, 500, 4, 5, 7, 16, 17], dynamic=True)


def test_sizes_above_the_planned_range_are_planned_when_the_bound_is_too_large(monkeypatch):
    from tracegrad.compiler import dynamic
    monkeypatch.setattr(dynamic, "MAX_PLANNED_CHECK", 4)     # no check above the probes
    _check_sizes(flat_prefix_of_transpose, lambda n: (16, n), [2, 3, 17, 20, 33])


def test_flat_tail_of_a_transpose_below_the_probes():
    # the offset of the last 7 flat elements follows s0; before: wrong at 2, 3, 4, 5
    # (off by 0.78 .. 1.4) after dynamic=True fitted at 8
    _check_sizes(lambda x: x.t().reshape(-1)[-7:] * 1, lambda n: (n, 4),
                 [8, 5, 2, 3, 4, 17, 64, 500, 31], dynamic=True)


def test_constant_prefix_of_a_permuted_3d_tensor_below_the_probes():
    # before: s0 = 2, 3 read out of bounds (off by 2.5e32) after a fit at 16
    _check_sizes(lambda x: x.permute(2, 0, 1).reshape(-1)[:11] * 1, lambda n: (n, 3, 2),
                 [16, 32, 2, 64, 128, 3, 7], dynamic=True)
