"""Hypothesis: convolution, transposed convolution and pooling with random stride,
padding, dilation, groups, channels 1..5 and odd sizes, compiled (static, automatic and
``dynamic=True`` over varying batch sizes) against eager: results and the gradients of
every argument. Covers the CNN passes (permute sinking, recomputed ReLU masks, one copy of
the conv columns read transposed, col2im by stride phases) and symbolic drivers."""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import tracegrad as tg
import tracegrad.nn.functional as F

BATCHES = (2, 3, 1, 5)


@st.composite
def layers(draw):
    kind = draw(st.sampled_from(["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
                                 "conv1d", "conv_relu_conv"]))
    groups = draw(st.sampled_from([1, 1, 2])) if "conv" in kind else 1
    cfg = dict(
        kind=kind, groups=groups,
        cin=groups * draw(st.integers(1, 3)), cout=groups * draw(st.integers(1, 3)),
        k=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        size=(draw(st.integers(7, 11)), draw(st.integers(7, 11))),
        dynamic=draw(st.sampled_from([None, True, False])))
    cfg["padding"] = tuple(draw(st.integers(0, kk // 2)) for kk in cfg["k"])
    cfg["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1))
                                  for s, d in zip(cfg["stride"], cfg["dilation"]))
    return cfg


def _make(cfg):
    """(function of (x, w, b), argument shapes without the batch dim)."""
    kind, g, cin, cout = cfg["kind"], cfg["groups"], cfg["cin"], cfg["cout"]
    k, s, p, d = cfg["k"], cfg["stride"], cfg["padding"], cfg["dilation"]
    x_shape = (cin,) + cfg["size"]
    if kind == "conv2d":
        return (lambda x, w, b: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
                x_shape, (cout, cin // g) + k)
    if kind == "conv_relu_conv":   # the ReLU between two convolutions: CNN passes
        def fn(x, w, b):
            h = F.relu(F.conv2d(x, w, b, stride=s, padding=p, groups=g))
            return F.conv2d(h, w.transpose(0, 1).flip(2, 3)[:, :, :1, :1], padding=1)
        return fn, x_shape, (cout, cin // g) + k
    if kind == "conv1d":
        return (lambda x, w, b: F.conv1d(x, w, b, stride=s[0], padding=p[0], dilation=d[0],
                                         groups=g),
                (cin, cfg["size"][1]), (cout, cin // g, k[0]))
    if kind == "conv_transpose2d":
        op = cfg["output_padding"]
        return (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=s, padding=p,
                                                   output_padding=op, dilation=d, groups=g),
                x_shape, (cin, cout // g) + k)
    if kind == "max_pool2d":
        return (lambda x, w, b: F.max_pool2d(x, k, stride=s, padding=p, dilation=d) * b.sum()
                + w.sum(), x_shape, (1,))
    return (lambda x, w, b: F.avg_pool2d(x, k, stride=s, padding=p) * b.sum() + w.sum(),
            x_shape, (1,))


def _run(fn, arrays):
    ts = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    weight = np.cos(np.arange(out.numel(), dtype=np.float32)).reshape(tuple(out.shape))
    (out * tg.tensor(weight)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts]


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_compiled_conv_and_pool_match_eager_at_varying_batch(cfg):
    note(repr(cfg))
    fn, x_shape, w_shape = _make(cfg)
    compiled = tg.compile(fn, dynamic=cfg["dynamic"])
    rng = np.random.default_rng(0)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[1] * cfg["groups"] if "transpose" in cfg["kind"]
                            else w_shape[0]).astype(np.float32)
    for batch in BATCHES:
        x = rng.standard_normal((batch,) + x_shape).astype(np.float32)
        want = _run(fn, [x, w, b])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a size that stops the trace runs eagerly
            got = _run(compiled, [x, w, b])
        for name, g, e in zip(("result", "dx", "dw", "db"), got, want):
            assert g.shape == e.shape, (batch, name)
            scale = max(1.0, float(np.abs(e).max()))
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=f"batch {batch}: {name}")
