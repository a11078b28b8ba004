"""Attention composites: scaled_dot_product_attention and the multi-head forward."""
from __future__ import annotations

import math

import numpy as np

from .._ops import math as M
from .._ops import reduce as R
from .._ops.creation import zeros
from .._ops.shape import cat
from .._primitives.registry import ShapeError
from .._tensor import Tensor


def _dropout(x: Tensor, p: float, training: bool) -> Tensor:
    from .functional import dropout
    return dropout(x, p, training)


def _mask_to_additive(mask: Tensor, dtype) -> Tensor:
    """Boolean masks mark positions NOT allowed to attend (True -> -inf)."""
    if mask._data.dtype == np.bool_:
        from .._ops.creation import zeros
        return M.where(mask, float("-inf"), zeros(*mask.shape, dtype=dtype))
    return mask


def _repeat_heads(x: Tensor, groups: int) -> Tensor:
    """``x.repeat_interleave(groups, -3)``: each head ``groups`` times in a row."""
    shape = tuple(x.shape)
    x = x.unsqueeze(-3).expand(shape[:-2] + (groups,) + shape[-2:])
    return x.reshape(shape[:-3] + (shape[-3] * groups,) + shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` over the last two dims.

    A boolean ``attn_mask`` here marks positions that MAY attend (True = keep), as in
    PyTorch's ``F.scaled_dot_product_attention``.
    """
    L, S = query.shape[-2], key.shape[-2]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        # grouped-query attention: each key/value head serves a group of query heads
        # (it was ignored, so such shapes failed to broadcast)
        if query.shape[-3] % key.shape[-3] or query.shape[-3] % value.shape[-3]:
            raise ShapeError(f"scaled_dot_product_attention: enable_gqa needs the query "
                             f"heads ({query.shape[-3]}) to be a multiple of the key and "
                             f"value heads ({key.shape[-3]}, {value.shape[-3]})")
        key = _repeat_heads(key, query.shape[-3] // key.shape[-3])
        value = _repeat_heads(value, query.shape[-3] // value.shape[-3])
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        from .._ops.creation import tensor
        allowed = tensor(np.tril(np.ones((L, S), dtype=bool)))
        scores = M.where(allowed, scores, float("-inf"))
    if attn_mask is not None:
        if attn_mask._data.dtype == np.bool_:
            scores = M.where(attn_mask, scores, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = R.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = _dropout(weights, dropout_p, True)
    return weights @ value


def _in_projection(q, k, v, w, b, E):
    if q is k and k is v:  # self-attention: one matmul for all three
        proj = q @ w.t()
        if b is not None:
            proj = proj + b
        return proj.chunk(3, -1)
    wq, wk, wv = w.chunk(3, 0)
    bq, bk, bv = b.chunk(3, 0) if b is not None else (None, None, None)
    out = []
    for x, ww, bb in ((q, wq, bq), (k, wk, bk), (v, wv, bv)):
        y = x @ ww.t()
        out.append(y + bb if bb is not None else y)
    return tuple(out)


def _pad_keys(mask: Tensor, extra: int) -> Tensor:
    """An additive mask with ``extra`` trailing key columns that mask nothing."""
    if not extra:
        return mask
    return mask.pad_dims([(0, 0)] * (mask.ndim - 1) + [(0, extra)], 0.0)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False):
    """PyTorch's ``F.multi_head_attention_forward`` on ``(L, N, E)`` inputs (or
    unbatched ``(L, E)``). Returns ``(output, weights or None)``."""
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    if query.ndim != 3:
        raise ShapeError(f"MultiheadAttention: expected query of shape (L, N, E) or (L, E), "
                         f"got {tuple(query.shape)}")
    L, N, E = query.shape
    S = key.shape[0]
    if E != embed_dim_to_check:
        raise ShapeError(f"MultiheadAttention: was expecting embedding dimension of "
                         f"{embed_dim_to_check}, but got query of shape {tuple(query.shape)}")
    H = num_heads
    hd = E // H
    if use_separate_proj_weight:
        bq, bk, bv = in_proj_bias.chunk(3, 0) if in_proj_bias is not None else (None,) * 3
        q = query @ q_proj_weight.t()
        k = key @ k_proj_weight.t()
        v = value @ v_proj_weight.t()
        if bq is not None:
            q, k, v = q + bq, k + bk, v + bv
    else:
        q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, E)
    # extra key/value rows every query may attend to: a learned one (add_bias_kv), then a
    # zero one (add_zero_attn); the masks get a column of "attend" for each
    extra = 0
    if (bias_k is None) != (bias_v is None):
        raise ValueError("MultiheadAttention: bias_k and bias_v must be given together")
    if bias_k is not None:
        k = cat([k, bias_k.reshape(1, 1, E).expand(1, N, E)], 0)
        v = cat([v, bias_v.reshape(1, 1, E).expand(1, N, E)], 0)
        extra += 1
    if add_zero_attn:
        k = cat([k, zeros(1, N, E, dtype=k.dtype)], 0)
        v = cat([v, zeros(1, N, E, dtype=v.dtype)], 0)
        extra += 1
    # (L, N, E) -> (N, H, L, hd)
    q = q.reshape(L, N, H, hd).permute(1, 2, 0, 3)
    k = k.reshape(S + extra, N, H, hd).permute(1, 2, 0, 3)
    v = v.reshape(S + extra, N, H, hd).permute(1, 2, 0, 3)
    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (N, H, L, S)
    if is_causal and attn_mask is None:
        from .._ops.creation import tensor
        attn_mask = tensor(np.triu(np.ones((L, S), dtype=bool), 1))
    if attn_mask is not None:
        m = _mask_to_additive(attn_mask, scores.dtype)
        if m.ndim == 2:
            if tuple(m.shape) != (L, S):
                raise ShapeError(f"MultiheadAttention: the shape of the 2D attn_mask is "
                                 f"{tuple(m.shape)}, but should be {(L, S)}.")
            scores = scores + _pad_keys(m, extra)
        elif m.ndim == 3:
            if tuple(m.shape) != (N * H, L, S):
                raise ShapeError(f"MultiheadAttention: the shape of the 3D attn_mask is "
                                 f"{tuple(m.shape)}, but should be {(N * H, L, S)}.")
            scores = scores + _pad_keys(m, extra).reshape(N, H, L, S + extra)
        else:
            raise ShapeError(f"MultiheadAttention: attn_mask's dimension {m.ndim} is not "
                             f"supported")
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (N, S):
            raise ShapeError(f"MultiheadAttention: expected key_padding_mask of shape "
                             f"{(N, S)}, got {tuple(key_padding_mask.shape)}")
        kpm = _pad_keys(_mask_to_additive(key_padding_mask, scores.dtype), extra)
        kpm = kpm.reshape(N, 1, 1, S + extra)
        scores = scores + kpm
    weights = R.softmax(scores, -1)
    if dropout_p > 0.0 and training:
        weights = _dropout(weights, dropout_p, True)
    out = weights @ v  # (N, H, L, hd)
    out = out.permute(2, 0, 1, 3).reshape(L, N, E)
    out = out @ out_proj_weight.t()
    if out_proj_bias is not None:
        out = out + out_proj_bias
    if unbatched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = weights.mean(1)
    if unbatched:
        weights = weights.squeeze(0)
    return out, weights
