"""Bad dtypes and arguments raise PyTorch's errors (type and wording, plus the op, shapes
and dtypes involved) instead of computing a silent answer."""
from __future__ import annotations

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

LONG = torch.ones(2, 3, dtype=torch.int64)
FLOAT = torch.ones(3, 2)


@pytest.mark.parametrize("index", [-1, 4, -5])
def test_embedding_index_out_of_range(index):
    weight = torch.randn(4, 2)
    with pytest.raises(IndexError, match="index out of range in self"):
        F.embedding(torch.tensor([0, index]), weight)
    with pytest.raises(IndexError, match=f"index out of range in self.*index {index}"):
        nn.Embedding(4, 2)(torch.tensor([[index]]))


def test_embedding_in_range_still_works():
    weight = torch.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(F.embedding(torch.tensor([3, 0]), weight).numpy(),
                                  [[6.0, 7.0], [0.0, 1.0]])


@pytest.mark.parametrize("fn, name", [
    (lambda x: torch.softmax(x, 1), "softmax"), (lambda x: x.softmax(-1), "softmax"),
    (lambda x: F.softmax(x, 1), "softmax"), (lambda x: F.softmin(x, 1), "softmax"),
    (lambda x: F.log_softmax(x, 1), "log_softmax"), (lambda x: x.log_softmax(1), "log_softmax"),
    (lambda x: nn.Softmax(1)(x), "softmax")])
@pytest.mark.parametrize("dtype, type_name", [(torch.int64, "Long"), (torch.int32, "Int"),
                                              (torch.bool, "Bool")])
def test_softmax_on_integers_is_not_implemented(fn, name, dtype, type_name):
    with pytest.raises(RuntimeError, match=f"\"{name}\" not implemented for '{type_name}'"):
        fn(torch.ones(2, 3, dtype=dtype))


def test_softmax_on_integers_with_a_float_dtype_works():
    out = torch.softmax(LONG, 1, dtype=torch.float32)
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 1 / 3), rtol=1e-6)


@pytest.mark.parametrize("fn, a, b, name", [
    (lambda a, b: a @ b, LONG, FLOAT, "matmul"),
    (torch.matmul, LONG, FLOAT, "matmul"),
    (torch.mm, LONG, FLOAT, "mm"),
    (lambda a, b: a.mm(b), LONG, FLOAT, "mm"),
    (torch.bmm, LONG.unsqueeze(0), FLOAT.unsqueeze(0), "bmm"),
    (torch.matmul, FLOAT.t(), LONG.t(), "matmul"),
])
def test_matmul_of_mixed_dtypes_raises(fn, a, b, name):
    da, db = ("long int", "float") if a.dtype == torch.int64 else ("float", "long int")
    with pytest.raises(RuntimeError, match=f"{name}: expected m1 and m2 to have the same "
                                           f"dtype, but got: {da} != {db}"):
        fn(a, b)


def test_matmul_int32_and_float64_name_their_types():
    with pytest.raises(RuntimeError, match="int != float"):
        LONG.int() @ FLOAT
    with pytest.raises(RuntimeError, match="double != float"):
        FLOAT.double() @ FLOAT.t()
    with pytest.raises(RuntimeError, match="dot : expected both vectors to have same dtype, "
                                           "but found Long and Float"):
        torch.dot(torch.ones(3, dtype=torch.int64), torch.ones(3))


def test_matmul_of_one_dtype_still_works():
    np.testing.assert_array_equal((LONG @ LONG.t()).numpy(), np.full((2, 2), 3))
    np.testing.assert_allclose((FLOAT.t() @ FLOAT).numpy(), np.full((2, 2), 3.0))


def test_linear_on_integer_input_raises():
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype, but got "
                                           "Long and Float"):
        nn.Linear(3, 2)(LONG)
    with pytest.raises(RuntimeError, match="Long and Float"):
        F.linear(LONG, torch.ones(2, 3))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss, nn.CrossEntropyLoss(),
                                  nn.NLLLoss()])
def test_class_index_target_must_be_long(loss):
    logits = torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but "
                                           "got Int"):
        loss(logits, torch.tensor([0, 1], dtype=torch.int32))
    want = loss(logits, torch.tensor([0, 2]))
    got = loss(logits, torch.tensor([0, 2], dtype=torch.uint8))  # Byte is accepted
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


CONV = [(F.conv1d, (1, 1, 6), (1, 1, 3)), (F.conv2d, (1, 1, 6, 6), (1, 1, 3, 3)),
        (F.conv_transpose1d, (1, 1, 6), (1, 1, 3)),
        (F.conv_transpose2d, (1, 1, 6, 6), (1, 1, 3, 3))]


@pytest.mark.parametrize("fn, xs, ws", CONV)
def test_conv_negative_padding_stride_dilation(fn, xs, ws):
    x, w = torch.ones(*xs), torch.ones(*ws)
    with pytest.raises(RuntimeError, match="negative padding is not supported"):
        fn(x, w, padding=-1)
    for stride in (0, -1):
        with pytest.raises(RuntimeError, match="non-positive stride is not supported"):
            fn(x, w, stride=stride)
    with pytest.raises(RuntimeError, match="dilation should be greater than zero"):
        fn(x, w, dilation=0)


@pytest.mark.parametrize("module, shape", [(nn.Conv1d, (1, 1, 6)), (nn.Conv2d, (1, 1, 6, 6))])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_conv_module_negative_padding(module, shape, padding_mode):
    conv = module(1, 1, 3, padding=-1, padding_mode=padding_mode)
    with pytest.raises(RuntimeError, match="negative padding is not supported"):
        conv(torch.ones(*shape))


def test_conv_wrong_rank_channels_groups_and_dtype():
    w = torch.ones(1, 1, 3, 3)
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) "
                                           r"input to conv2d, but got input of size: \[5, 5\]"):
        F.conv2d(torch.ones(5, 5), w)
    with pytest.raises(RuntimeError, match=r"expected input\[1, 2, 5, 5\] to have 1 channels, "
                                           r"but got 2 channels instead"):
        F.conv2d(torch.ones(1, 2, 5, 5), w)
    with pytest.raises(RuntimeError, match="Given groups=3, expected weight to be divisible "
                                           "by 3 at dimension 0"):
        F.conv2d(torch.ones(1, 6, 5, 5), torch.ones(4, 2, 3, 3), groups=3)
    with pytest.raises(RuntimeError, match="conv2d: expected scalar type Long but found Float"):
        F.conv2d(torch.ones(1, 1, 5, 5, dtype=torch.int64), w)


POOL = [(F.max_pool1d, (1, 1, 6)), (F.max_pool2d, (1, 1, 6, 6)),
        (F.avg_pool1d, (1, 1, 6)), (F.avg_pool2d, (1, 1, 6, 6))]


@pytest.mark.parametrize("fn, shape", POOL)
def test_pool_bad_arguments(fn, shape):
    x = torch.ones(*shape)
    with pytest.raises(RuntimeError, match="pad must be non-negative"):
        fn(x, 3, padding=-1)
    for k in (0, -1):
        with pytest.raises(RuntimeError, match="kernel size should be greater than zero"):
            fn(x, k)
    with pytest.raises(RuntimeError, match="stride should not be zero"):
        fn(x, 2, stride=0)
    with pytest.raises(RuntimeError, match="stride should be greater than zero"):
        fn(x, 2, stride=-1)


def test_pool_and_unfold_dilation_and_padding():
    with pytest.raises(RuntimeError, match="dilation should be greater than zero"):
        F.max_pool2d(torch.ones(1, 1, 6, 6), 2, dilation=0)
    with pytest.raises(RuntimeError, match="pad must be non-negative"):
        nn.MaxPool2d(3, padding=-1)(torch.ones(1, 1, 6, 6))
    with pytest.raises(RuntimeError, match="unfold: pad must be non-negative"):
        F.unfold(torch.ones(1, 1, 5, 5), 2, padding=-1)
    with pytest.raises(RuntimeError, match="unfold: stride should not be zero"):
        F.unfold(torch.ones(1, 1, 5, 5), 2, stride=0)
