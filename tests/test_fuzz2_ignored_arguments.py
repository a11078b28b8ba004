"""Arguments that were accepted and silently ignored, giving answers that differ from
PyTorch's (found by the second fuzz pass, which listed every public parameter its
function never reads): ``embedding(scale_grad_by_freq=True)`` and
``interpolate(recompute_scale_factor=True)``. References computed here by hand."""
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

INDEX = np.array([[0, 1, 1, 4], [1, 1, 2, 0]])


def _embedding_grad_reference(weight, upstream, padding_idx=None):
    counts = np.bincount(INDEX.reshape(-1), minlength=len(weight))
    grad = np.zeros_like(weight)
    for pos, i in np.ndenumerate(INDEX):
        if i != padding_idx:
            grad[i] += upstream[pos] / counts[i]
    return grad


@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("compiled", [False, True])
def test_embedding_scale_grad_by_freq_divides_by_the_count(padding_idx, compiled):
    w = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    up = np.random.default_rng(1).standard_normal(INDEX.shape + (3,)).astype(np.float32)

    def loss(index, weight):
        rows = F.embedding(index, weight, padding_idx=padding_idx, scale_grad_by_freq=True)
        return (rows * tg.tensor(up)).sum(), rows

    fn = tg.compile(loss) if compiled else loss
    weight = tg.tensor(w, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, rows = fn(tg.tensor(INDEX), weight)
    total.backward()
    np.testing.assert_array_equal(rows.detach().numpy(), w[INDEX])   # values untouched
    np.testing.assert_allclose(weight.grad.numpy(),
                               _embedding_grad_reference(w, up, padding_idx), rtol=1e-6)


def test_the_embedding_module_passes_scale_grad_by_freq():
    emb = nn.Embedding(5, 3, scale_grad_by_freq=True)
    emb(tg.tensor(INDEX)).sum().backward()
    counts = np.bincount(INDEX.reshape(-1), minlength=5)
    np.testing.assert_allclose(emb.weight.grad.numpy()[:, 0], (counts > 0).astype(np.float32))


@pytest.mark.parametrize("size,scale", [(5, 1.7), (7, 2.5), (6, 0.7)])
def test_interpolate_recompute_scale_factor_indexes_with_the_sizes(size, scale):
    x = np.arange(size, dtype=np.float32).reshape(1, 1, size)
    out_size = int(np.floor(size * scale))
    got = F.interpolate(tg.tensor(x), scale_factor=scale, recompute_scale_factor=True)
    want = np.minimum(np.floor(np.arange(out_size) * (size / out_size)), size - 1)
    np.testing.assert_array_equal(got.numpy()[0, 0], want)
    plain = F.interpolate(tg.tensor(x), scale_factor=scale)   # 1 / scale_factor
    np.testing.assert_array_equal(
        plain.numpy()[0, 0], np.minimum(np.floor(np.arange(out_size) / scale), size - 1))


def test_recompute_changes_the_answer_for_five_at_one_point_seven():
    x = tg.tensor(np.arange(5, dtype=np.float32).reshape(1, 1, 5))
    got = F.interpolate(x, scale_factor=1.7, recompute_scale_factor=True).numpy()[0, 0]
    assert got.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]   # PyTorch 2.13's answer


def _attention_reference(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("compiled", [False, True])
def test_scaled_dot_product_attention_enable_gqa_repeats_key_value_heads(compiled):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 6, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 7, 8)).astype(np.float32)
    v = rng.standard_normal((2, 2, 7, 8)).astype(np.float32)

    def attend(a, b, c):
        return F.scaled_dot_product_attention(a, b, c, enable_gqa=True)
    fn = tg.compile(attend) if compiled else attend
    got = fn(tg.tensor(q), tg.tensor(k), tg.tensor(v)).numpy()
    # query heads 0-2 read key/value head 0, heads 3-5 head 1 (repeat_interleave)
    want = _attention_reference(q, np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_enable_gqa_with_heads_that_do_not_divide_names_the_operation():
    with pytest.raises(RuntimeError, match="scaled_dot_product_attention: enable_gqa"):
        F.scaled_dot_product_attention(tg.zeros(1, 3, 2, 4), tg.zeros(1, 2, 2, 4),
                                       tg.zeros(1, 2, 2, 4), enable_gqa=True)


@pytest.mark.parametrize("fn,shape", [(F.dropout1d, (4, 6, 5)), (F.dropout2d, (4, 6, 3, 3)),
                                      (F.alpha_dropout, (4, 30))])
def test_channel_and_alpha_dropout_inplace_write_the_input(fn, shape):
    tg.manual_seed(0)
    x = tg.ones(*shape)
    out = fn(x, p=0.5, training=True, inplace=True)
    assert out is x
    assert (x.numpy() != 1).any()   # was ignored: the input kept its ones


@pytest.mark.parametrize("fn", [F.dropout1d, F.dropout2d])
def test_channel_dropout_with_p_one_zeroes_without_dividing_by_zero(fn):
    x = tg.ones(2, 3, 4, 4, requires_grad=True)
    out = fn(x, p=1.0)
    out.sum().backward()
    assert out.detach().numpy().tolist() == np.zeros((2, 3, 4, 4)).tolist()
    assert x.grad.numpy().tolist() == np.zeros((2, 3, 4, 4)).tolist()
    with pytest.raises(ValueError, match="dropout probability"):
        fn(x, p=1.5)
