"""Layers against direct NumPy loops: conv (stride, padding, dilation, groups, 'same'),
transposed conv, pooling (ceil_mode, count_include_pad), adaptive pooling, batch norm
running statistics, layer/group norm, embedding; gradcheck on each."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F
from tracegrad import ShapeError
from test_nn_helpers import module_gradcheck, projected_gradcheck, rand64

rng = np.random.default_rng(1)


def conv2d_ref(x, w, b, stride, pad, dil, groups):
    """Direct loop convolution (cross-correlation), NCHW."""
    N, C, H, W = x.shape
    C_out, Cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    Hp, Wp = x.shape[2:]
    oh = (Hp - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (Wp - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((N, C_out, oh, ow))
    og = C_out // groups
    for n in range(N):
        for o in range(C_out):
            g = o // og
            for i in range(oh):
                for j in range(ow):
                    s = 0.0
                    for c in range(Cg):
                        for u in range(kh):
                            for v in range(kw):
                                s += w[o, c, u, v] * x[n, g * Cg + c, i * stride[0] + u * dil[0],
                                                       j * stride[1] + v * dil[1]]
                    out[n, o, i, j] = s + (b[o] if b is not None else 0.0)
    return out


@pytest.mark.parametrize("stride,pad,dil,groups,bias", [
    ((1, 1), (0, 0), (1, 1), 1, True), ((2, 1), (1, 2), (1, 1), 1, False),
    ((1, 2), (1, 1), (2, 1), 2, True), ((2, 2), (0, 1), (1, 2), 4, True)])
def test_conv2d_matches_loop(stride, pad, dil, groups, bias):
    x = rng.standard_normal((2, 4, 7, 6))
    m = nn.Conv2d(4, 4, (3, 2), stride=stride, padding=pad, dilation=dil, groups=groups,
                  bias=bias).double()
    w = m.weight.detach().numpy()
    b = m.bias.detach().numpy() if bias else None
    out = m(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), conv2d_ref(x, w, b, stride, pad, dil, groups),
                               rtol=1e-10, atol=1e-12)


def test_conv2d_gradcheck_and_unbatched():
    m = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2)
    assert module_gradcheck(m, rand64(1, 2, 5, 5))
    x = rand64(2, 5, 5)
    np.testing.assert_allclose(m(x).detach().numpy(), m(x.unsqueeze(0))[0].detach().numpy())


def test_conv2d_same_valid_and_padding_modes():
    x = torch.tensor(rng.standard_normal((1, 2, 6, 5)))
    m = nn.Conv2d(2, 3, (3, 4), padding="same", dilation=(1, 2)).double()
    assert tuple(m(x).shape) == (1, 3, 6, 5)
    # 'same' for an even kernel pads more on the right, like PyTorch
    total = 2 * 3
    ref = conv2d_ref(np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (total // 2, total - total // 2))),
                     m.weight.detach().numpy(), m.bias.detach().numpy(), (1, 1), (0, 0), (1, 2), 1)
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-10)
    assert tuple(nn.Conv2d(2, 3, 3, padding="valid")(x.float()).shape) == (1, 3, 4, 3)
    r = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect").double()
    xr = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    np.testing.assert_allclose(r(x).detach().numpy(),
                               conv2d_ref(xr, r.weight.detach().numpy(), r.bias.detach().numpy(),
                                          (1, 1), (0, 0), (1, 1), 1), rtol=1e-10)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")


def test_conv1d_matches_conv2d_with_height_one():
    x = rng.standard_normal((2, 3, 9))
    m = nn.Conv1d(3, 2, 3, stride=2, padding=1, dilation=2).double()
    ref = conv2d_ref(x[:, :, None, :], m.weight.detach().numpy()[:, :, None, :],
                     m.bias.detach().numpy(), (1, 2), (0, 1), (1, 2), 1)[:, :, 0, :]
    np.testing.assert_allclose(m(torch.tensor(x)).detach().numpy(), ref, rtol=1e-10)
    assert module_gradcheck(nn.Conv1d(2, 2, 2), rand64(1, 2, 4))


def test_conv_input_errors_name_layer_and_shapes():
    with pytest.raises(ShapeError, match=r"Conv2d\(3, 8.*expected input of shape \(N, C, H, W\) "
                                         r"or \(C, H, W\) with C = in_channels = 3, got shape "
                                         r"\(2, 4, 8, 8\)"):
        nn.Conv2d(3, 8, 3)(torch.randn(2, 4, 8, 8))
    with pytest.raises(ShapeError, match="got shape \\(8, 8\\)"):
        nn.Conv2d(3, 8, 3)(torch.randn(8, 8))
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        nn.Conv2d(1, 1, 5)(torch.randn(1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"Linear\(in_features=10, out_features=4, bias=True\): "
                                         r"expected input with last dimension 10, got shape "
                                         r"\(3, 7\)"):
        nn.Linear(10, 4)(torch.randn(3, 7))


def conv_transpose2d_ref(x, w, b, stride, pad, out_pad, dil):
    """Scatter form: each input pixel adds w * x into the output."""
    N, C, H, W = x.shape
    _, C_out, kh, kw = w.shape
    Ho = (H - 1) * stride - 2 * pad + dil * (kh - 1) + out_pad + 1
    Wo = (W - 1) * stride - 2 * pad + dil * (kw - 1) + out_pad + 1
    full = np.zeros((N, C_out, Ho + 2 * pad + 4, Wo + 2 * pad + 4))
    for i in range(H):
        for j in range(W):
            for u in range(kh):
                for v in range(kw):
                    full[:, :, i * stride + u * dil, j * stride + v * dil] += \
                        np.einsum("nc,co->no", x[:, :, i, j], w[:, :, u, v])
    return full[:, :, pad:pad + Ho, pad:pad + Wo] + b[None, :, None, None]


@pytest.mark.parametrize("stride,pad,out_pad,dil", [(1, 0, 0, 1), (2, 1, 1, 1), (3, 1, 0, 2)])
def test_conv_transpose2d_matches_scatter(stride, pad, out_pad, dil):
    x = rng.standard_normal((2, 3, 4, 3))
    m = nn.ConvTranspose2d(3, 2, 3, stride=stride, padding=pad, output_padding=out_pad,
                           dilation=dil).double()
    out = m(torch.tensor(x)).detach().numpy()
    ref = conv_transpose2d_ref(x, m.weight.detach().numpy(), m.bias.detach().numpy(), stride,
                               pad, out_pad, dil)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_conv_transpose2d_is_the_gradient_of_conv2d_and_gradcheck():
    x = rand64(1, 2, 5, 5)
    w = rand64(3, 2, 3, 3, seed=4, requires_grad=False)
    y = F.conv2d(x, w, stride=2, padding=1)
    g = torch.tensor(rng.standard_normal(tuple(y.shape)))
    (y * g).sum().backward()
    back = F.conv_transpose2d(g, w, stride=2, padding=1)
    np.testing.assert_allclose(back.numpy(), x.grad.numpy(), rtol=1e-10)
    x = rand64(2, 4, 6, 5)
    w = rand64(6, 2, 3, 2, seed=5, requires_grad=False)
    y = F.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    g = torch.tensor(rng.standard_normal(tuple(y.shape)))
    (y * g).sum().backward()
    back = F.conv_transpose2d(g, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2,
                              output_padding=(1, 0))
    np.testing.assert_allclose(back.numpy(), x.grad.numpy(), rtol=1e-10, atol=1e-12)
    m = nn.ConvTranspose2d(4, 2, 2, stride=2, groups=2)
    assert module_gradcheck(m, rand64(1, 4, 2, 2))


def pool_ref(x, k, s, p, op, ceil=False, count_include_pad=True):
    N, C, H, W = x.shape
    def osz(n, kk, ss, pp):
        o = ((n + 2 * pp - kk + (ss - 1 if ceil else 0)) // ss) + 1
        if ceil and (o - 1) * ss >= n + pp:
            o -= 1
        return o
    oh, ow = osz(H, k[0], s[0], p[0]), osz(W, k[1], s[1], p[1])
    out = np.zeros((N, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            pool_size = (h1 - h0) * (w1 - w0)
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            win = x[:, :, hs:he, ws:we]
            if op == "max":
                out[:, :, i, j] = win.max((2, 3))
            else:
                div = pool_size if count_include_pad else (he - hs) * (we - ws)
                out[:, :, i, j] = win.sum((2, 3)) / div
    return out


@pytest.mark.parametrize("k,s,p,ceil", [((2, 2), (2, 2), (0, 0), False),
                                        ((3, 2), (2, 1), (1, 1), False),
                                        ((3, 3), (2, 2), (1, 0), True),
                                        ((2, 3), (3, 2), (0, 1), True)])
def test_pooling_matches_loop(k, s, p, ceil):
    x = rng.standard_normal((2, 3, 7, 8))
    xt = torch.tensor(x)
    mp = nn.MaxPool2d(k, s, p, ceil_mode=ceil)(xt)
    np.testing.assert_allclose(mp.numpy(), pool_ref(x, k, s, p, "max", ceil))
    for cip in (True, False):
        ap = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=cip)(xt)
        np.testing.assert_allclose(ap.numpy(), pool_ref(x, k, s, p, "avg", ceil, cip), rtol=1e-12)


def test_pool1d_dilation_indices_and_gradcheck():
    x = rng.standard_normal((1, 2, 9))
    out = F.max_pool1d(torch.tensor(x), 3, 2, 1, dilation=2)
    ref = np.full((1, 2, 4), -np.inf)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)), constant_values=-np.inf)
    for i in range(4):
        ref[..., i] = xp[..., [2 * i, 2 * i + 2, 2 * i + 4]].max(-1)
    np.testing.assert_allclose(out.numpy(), ref)
    np.testing.assert_allclose(nn.AvgPool1d(3, 2)(torch.tensor(x)).numpy(),
                               np.stack([x[..., 2 * i:2 * i + 3].mean(-1) for i in range(4)], -1))
    vals, idx = F.max_pool2d(torch.tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2,
                             return_indices=True)
    assert idx.tolist() == [[[[5, 7], [13, 15]]]] and vals.tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]]
    assert module_gradcheck(nn.MaxPool2d(2, 1, 1), rand64(1, 1, 3, 4))
    # non-overlapping tiles take a reshape fast path
    x = rng.standard_normal((2, 3, 8, 6))
    np.testing.assert_allclose(F.max_pool2d(torch.tensor(x), 2).numpy(),
                               pool_ref(x, (2, 2), (2, 2), (0, 0), "max"))
    np.testing.assert_allclose(F.avg_pool2d(torch.tensor(x), (2, 3)).numpy(),
                               pool_ref(x, (2, 3), (2, 3), (0, 0), "avg"))
    assert module_gradcheck(nn.MaxPool2d(2), rand64(1, 2, 4, 4))
    assert module_gradcheck(nn.AvgPool2d(2), rand64(1, 2, 4, 2))
    assert module_gradcheck(nn.AvgPool2d(3, 2, 1, count_include_pad=False, ceil_mode=True),
                            rand64(1, 2, 4, 5))


@pytest.mark.parametrize("out_size", [(1, 1), (2, 3), (3, 3), (4, 6)])
def test_adaptive_avg_pool2d(out_size):
    x = rng.standard_normal((2, 3, 5, 6))
    out = nn.AdaptiveAvgPool2d(out_size)(torch.tensor(x)).numpy()
    H, W = 5, 6
    oh, ow = out_size
    for i in range(oh):
        for j in range(ow):
            hs, he = (i * H) // oh, -(-((i + 1) * H) // oh)
            ws, we = (j * W) // ow, -(-((j + 1) * W) // ow)
            np.testing.assert_allclose(out[:, :, i, j], x[:, :, hs:he, ws:we].mean((2, 3)))
    assert module_gradcheck(nn.AdaptiveAvgPool2d((2, 2)), rand64(1, 1, 3, 4))


def test_batchnorm_training_running_stats_and_eval():
    x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1
    bn = nn.BatchNorm2d(3, momentum=0.2).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0], dtype=torch.float64))
    out = bn(torch.tensor(x)).detach().numpy()
    mean = x.mean((0, 2, 3))
    var = x.var((0, 2, 3))
    ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    ref = ref * np.array([1.0, 2.0, 0.5])[None, :, None, None] + np.array([0.0, -1.0, 3.0])[None, :, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    n = 8 * 16
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.2 * mean)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.8 + 0.2 * var * n / (n - 1))
    assert bn.num_batches_tracked.item() == 1 and bn.num_batches_tracked.dtype == torch.int64
    bn.eval()
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    out = bn(torch.tensor(x)).detach().numpy()
    ref = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    ref = ref * np.array([1.0, 2.0, 0.5])[None, :, None, None] + np.array([0.0, -1.0, 3.0])[None, :, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-10)
    assert bn.num_batches_tracked.item() == 1  # eval does not count


def test_batchnorm_cumulative_average_no_tracking_and_no_affine():
    bn = nn.BatchNorm1d(2, momentum=None, affine=False).double()
    batches = [rng.standard_normal((5, 2)) + i for i in range(3)]
    for b in batches:
        bn(torch.tensor(b))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], 0))
    np.testing.assert_allclose(bn.running_var.numpy(),
                               np.mean([b.var(0, ddof=1) for b in batches], 0))
    assert list(bn.parameters()) == []
    free = nn.BatchNorm1d(2, track_running_stats=False).double()
    assert free.running_mean is None and "running_mean" not in free.state_dict()
    free.eval()
    x = rng.standard_normal((4, 2, 3))
    out = free(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(out, (x - x.mean((0, 2), keepdims=True)) /
                               np.sqrt(x.var((0, 2), keepdims=True) + 1e-5), rtol=1e-10)
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3.*num_features = 3, got shape \(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(torch.randn(1, 3))


def test_batchnorm_gradcheck():
    assert module_gradcheck(nn.BatchNorm2d(2), rand64(3, 2, 2, 2))
    assert module_gradcheck(nn.BatchNorm1d(3), rand64(4, 3))


def test_layer_norm_and_group_norm():
    x = rng.standard_normal((2, 4, 3, 2))
    ln = nn.LayerNorm((3, 2)).double()
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    m = x.mean((2, 3), keepdims=True)
    v = x.var((2, 3), keepdims=True)
    ref = (x - m) / np.sqrt(v + 1e-5) * ln.weight.detach().numpy() + ln.bias.detach().numpy()
    np.testing.assert_allclose(ln(torch.tensor(x)).detach().numpy(), ref, rtol=1e-10)
    gn = nn.GroupNorm(2, 4).double()
    xg = x.reshape(2, 2, -1)
    ref = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(gn(torch.tensor(x)).detach().numpy(), ref, rtol=1e-10)
    assert module_gradcheck(ln, rand64(2, 3, 2))
    assert module_gradcheck(nn.GroupNorm(2, 4), rand64(2, 4, 3))
    with pytest.raises(ShapeError, match=r"trailing shape \(3, 2\), got shape \(2, 4\)"):
        ln(torch.randn(2, 4))


def test_linear_bilinear_values_init_and_gradcheck():
    torch.manual_seed(0)
    lin = nn.Linear(20, 3)
    bound = 1 / np.sqrt(20)
    w = lin.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    x = rng.standard_normal((4, 20)).astype(np.float32)
    np.testing.assert_allclose(lin(torch.tensor(x)).detach().numpy(),
                               x @ w.T + lin.bias.detach().numpy(), rtol=1e-5)
    assert module_gradcheck(nn.Linear(3, 2), rand64(2, 3))
    bil = nn.Bilinear(3, 2, 4).double()
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    ref = np.einsum("ni,kij,nj->nk", a, bil.weight.detach().numpy(), b) + bil.bias.detach().numpy()
    np.testing.assert_allclose(bil(torch.tensor(a), torch.tensor(b)).detach().numpy(), ref,
                               rtol=1e-10)
    assert module_gradcheck(nn.Bilinear(2, 3, 2), rand64(2, 2), rand64(2, 3, seed=1))


def test_embedding_lookup_padding_idx_and_pretrained():
    torch.manual_seed(0)
    emb = nn.Embedding(6, 3, padding_idx=2).double()
    assert emb.weight[2].tolist() == [0.0, 0.0, 0.0]
    idx = torch.tensor([[0, 2, 5], [2, 2, 1]])
    out = emb(idx)
    np.testing.assert_allclose(out.detach().numpy(), emb.weight.detach().numpy()[idx.numpy()])
    (out * torch.tensor(rng.standard_normal((2, 3, 3)))).sum().backward()
    g = emb.weight.grad.numpy()
    assert np.all(g[2] == 0) and np.all(g[3] == 0) and np.any(g[0] != 0)
    # a repeated index accumulates its gradient
    e2 = nn.Embedding(4, 2)
    e2(torch.tensor([1, 1, 1])).sum().backward()
    assert e2.weight.grad[1].tolist() == [3.0, 3.0]
    table = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pre = nn.Embedding.from_pretrained(table)
    assert not pre.weight.requires_grad and pre(torch.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    with pytest.raises(IndexError, match="index out of range in self.*index 9.*6 rows"):
        emb(torch.tensor([9]))
    w = rand64(5, 2)
    idx = torch.tensor([1, 3, 3])
    assert projected_gradcheck(lambda t: F.embedding(idx, t), (w,))


def test_flatten_unflatten_identity():
    x = torch.randn(2, 3, 4, 5)
    assert tuple(nn.Flatten()(x).shape) == (2, 60)
    assert tuple(nn.Flatten(0, 2)(x).shape) == (24, 5)
    assert tuple(nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape) == (2, 3, 20)
    assert nn.Identity(54, unused="x")(x) is x
