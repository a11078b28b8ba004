"""The WINDOWS derivative (col2im by stride phases, tracegrad/_primitives/col2im.py):
values against a NumPy scatter-add of every window element, eager and compiled, a second
derivative, and the fused kernel's loads (one per term: 4 for a 3x3 window of stride 2)."""
from itertools import product

import numpy as np
import pytest

import tracegrad
import tracegrad.nn as nn
from tracegrad.nn._conv import windows

rng = np.random.default_rng(0)


def _col2im_reference(g: np.ndarray, shape, window, stride, dilation) -> np.ndarray:
    """Scatter-add every element of ``g`` (shape ``(..., *out, *window)``) to the input
    position it was read from."""
    k = len(window)
    lead = len(shape) - k
    out = g.shape[lead:lead + k]
    res = np.zeros(shape, g.dtype)
    for t in product(*(range(n) for n in out)):
        for o in product(*(range(w) for w in window)):
            pos = tuple(ti * s + oi * d for ti, oi, s, d in zip(t, o, stride, dilation))
            res[(Ellipsis,) + pos] += g[(Ellipsis,) + t + o]
    return res


CASES = [  # input shape, window, stride, dilation
    ((2, 3, 10, 10), (3, 3), (2, 2), (1, 1)),     # the benchmark CNN's conv2 (padded)
    ((2, 3, 8, 8), (3, 3), (1, 1), (1, 1)),
    ((2, 9, 7), (3, 2), (2, 3), (1, 1)),          # odd sizes, unequal strides
    ((2, 11), (5,), (3,), (2,)),                  # dilation with stride
    ((1, 2, 12), (3,), (2,), (3,)),               # dilation above the stride
    ((3, 9, 9), (2, 2), (2, 2), (1, 1)),          # pooling: windows that do not overlap
    ((2, 10), (2,), (4,), (1,)),                  # stride above the window: gaps
    ((1, 7, 6, 5), (3, 2, 2), (2, 1, 3), (1, 2, 1)),  # 3-d
    ((4, 4), (4, 4), (1, 1), (1, 1)),             # one window
]


@pytest.mark.parametrize("shape, window, stride, dilation", CASES)
def test_windows_gradient_is_the_scatter_add_of_every_window_element(shape, window,
                                                                     stride, dilation):
    x = tracegrad.from_numpy(rng.standard_normal(shape)).requires_grad_()
    y = windows(x, window, stride, dilation)
    g = rng.standard_normal(tuple(y.shape))
    (gx,) = tracegrad.autograd.grad((y * tracegrad.from_numpy(g)).sum(), x)
    np.testing.assert_allclose(gx.numpy(), _col2im_reference(g, shape, window, stride,
                                                             dilation), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, window, stride, dilation", CASES[:5])
def test_compiled_windows_gradient_equals_eager(shape, window, stride, dilation):
    gnp = None

    def loss_fn(x):
        y = windows(x, window, stride, dilation)
        return (y * tracegrad.from_numpy(gnp)).sum()

    x0 = rng.standard_normal(shape).astype(np.float32)
    gnp = rng.standard_normal(tuple(windows(tracegrad.from_numpy(x0), window, stride,
                                            dilation).shape)).astype(np.float32)
    grads = []
    for fn in (loss_fn, tracegrad.compile(loss_fn)):
        x = tracegrad.from_numpy(x0.copy()).requires_grad_()
        fn(x).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grads[0], _col2im_reference(gnp, shape, window, stride,
                                                           dilation), rtol=1e-5, atol=1e-5)


def test_second_derivative_through_the_gradient_of_windows():
    # <col2im(G), v> is linear in G; its gradient in G is windows(v)
    shape, window, stride, dilation = (2, 9, 9), (3, 3), (2, 2), (1, 1)
    x = tracegrad.from_numpy(rng.standard_normal(shape)).requires_grad_()
    n_out = windows(x, window, stride, dilation).shape
    gt = tracegrad.from_numpy(rng.standard_normal(tuple(n_out))).requires_grad_()
    v = rng.standard_normal(shape)
    (gx,) = tracegrad.autograd.grad((windows(x, window, stride, dilation) * gt).sum(), x,
                                    create_graph=True)
    (gg,) = tracegrad.autograd.grad((gx * tracegrad.from_numpy(v)).sum(), gt)
    want = windows(tracegrad.from_numpy(v), window, stride, dilation).numpy()
    np.testing.assert_allclose(gg.numpy(), want, rtol=1e-12, atol=1e-12)


def test_conv_input_gradient_loads_one_column_per_term():
    """A 3x3 convolution of stride 2: the fused col2im + ReLU-backward kernel reads the
    column gradient 4 times per element (one per stride-phase term), not 9."""
    tracegrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1))
    x = tracegrad.from_numpy(rng.standard_normal((4, 2, 8, 8)).astype(np.float32))

    def loss_fn(x):
        return model(x).square().sum()

    compiled = tracegrad.compile(loss_fn)
    compiled(x).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    loss_fn(x).backward()
    for got, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(got, p.grad.numpy(), rtol=1e-4, atol=1e-5)
    (entry,) = compiled._cache.values()
    n_cols = 4 * 4 * 4 * 4 * 9   # (N * L, C * kh * kw) of the second convolution
    col2im = [k for k in entry.backward.program.kernels
              if any(a.size == n_cols and not a.is_output for a in k.kernel.buffers)
              and any(a.size == 4 * 4 * 8 * 8 and a.is_output for a in k.kernel.buffers)]
    assert col2im, [k.name for k in entry.backward.program.kernels]
    for k in col2im:
        col = next(f"buf{i}" for i, a in enumerate(k.kernel.buffers)
                   if a.size == n_cols and not a.is_output)
        assert k.loop_ir.count(f"LOAD({col},") == 4, k.loop_ir
