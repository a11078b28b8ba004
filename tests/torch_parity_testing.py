"""Run one function on tracegrad and on PyTorch with the same NumPy inputs and compare
values, dtypes, shapes and (optionally) gradients; and compiled against eager."""
from __future__ import annotations

import warnings

import numpy as np

import tracegrad as tg


def to_np(v):
    if isinstance(v, (tuple, list)):
        return [to_np(x) for x in v]
    if type(v).__module__.startswith("torch"):
        return v.detach().cpu().numpy(force=True)   # force: a ZeroTensor gradient
    if hasattr(v, "detach"):
        return v.detach().numpy()
    return np.asarray(v)


def dtype_name(t) -> str:
    return str(t.dtype).split(".")[-1]


def assert_same(ours, theirs, rtol=1e-5, atol=1e-6):
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b, rtol, atol)
        return
    if hasattr(theirs, "dtype") and hasattr(theirs, "shape") and not isinstance(theirs, np.ndarray):
        assert dtype_name(ours) == dtype_name(theirs), (ours.dtype, theirs.dtype)
        assert tuple(ours.shape) == tuple(theirs.shape), (ours.shape, theirs.shape)
    np.testing.assert_allclose(to_np(ours), to_np(theirs), rtol=rtol, atol=atol)


def compare(fn_ours, fn_theirs, *arrays, grad=(), rtol=1e-5, atol=1e-6, grad_rtol=1e-4):
    """``grad``: the positions of the float inputs to differentiate (sum of the output)."""
    import torch
    ours = [tg.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in grad) for i, a in enumerate(arrays)]
    out_o, out_t = fn_ours(tg, *ours), fn_theirs(torch, *theirs)
    assert_same(out_o, out_t, rtol, atol)
    if grad:
        outs_o = out_o if isinstance(out_o, (tuple, list)) else [out_o]
        outs_t = out_t if isinstance(out_t, (tuple, list)) else [out_t]
        loss_o, loss_t = 0, 0
        for k, (o, t) in enumerate(zip(outs_o, outs_t)):
            w = np.random.default_rng(k).standard_normal(tuple(t.shape))
            loss_o = loss_o + (o * tg.tensor(w, dtype=o.dtype)).sum()
            loss_t = loss_t + (t * torch.tensor(w, dtype=t.dtype)).sum()
        loss_o.backward()
        loss_t.backward()
        for i in grad:
            g_o, g_t = ours[i].grad, theirs[i].grad
            if g_t is None:
                assert g_o is None or not np.any(to_np(g_o)), f"input {i}: torch has no gradient"
                continue
            np.testing.assert_allclose(to_np(g_o), to_np(g_t), rtol=grad_rtol, atol=1e-6,
                                       err_msg=f"gradient of input {i}")
    return out_o


def compiled_matches_eager(fn, *arrays, expect_fallback=False, rtol=1e-6, atol=1e-7):
    args = [tg.tensor(a) for a in arrays]
    eager = fn(*args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = tg.compile(fn)(*args)
    fell_back = any("cannot be traced" in str(w.message) for w in caught)
    assert fell_back == expect_fallback, [str(w.message) for w in caught]
    assert_same(compiled, eager, rtol, atol)
