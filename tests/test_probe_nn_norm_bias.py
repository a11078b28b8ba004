"""``GroupNorm(..., bias=False)`` (PyTorch 2.13's keyword; it raised TypeError) and the
2.13 reprs of LayerNorm and GroupNorm, which print ``bias=``."""
import numpy as np

import tracegrad as tg


def test_group_norm_without_bias():
    m = tg.nn.GroupNorm(2, 4, bias=False)
    assert [n for n, _ in m.named_parameters()] == ["weight"] and m.bias is None
    with tg.no_grad():
        m.weight.copy_(tg.tensor([1.0, 2.0, 3.0, 4.0]))
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float64)
    g = x.reshape(3, 2, 10)
    want = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    want = want.reshape(3, 4, 5) * np.array([1.0, 2, 3, 4])[None, :, None]
    y = m(tg.tensor(x.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_reprs_print_bias():
    nn = tg.nn
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(nn.GroupNorm(2, 4, bias=False)) == \
        "GroupNorm(2, 4, eps=1e-05, affine=True, bias=False)"
    assert repr(nn.LayerNorm(5, bias=False)) == \
        "LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=False)"
    assert repr(nn.LayerNorm(5, elementwise_affine=False)) == \
        "LayerNorm((5,), eps=1e-05, elementwise_affine=False, bias=False)"
