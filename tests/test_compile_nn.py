"""Every nn composite compiled equals eager: outputs, input gradients, parameter
gradients and buffers (running statistics).

Each case builds a module twice from one seed: one copy runs through
``tracegrad.compile(module, fullgraph=True)`` (warnings as errors, so an eager fallback
fails), the other eagerly. Both see the same inputs for two calls (the second call must
replay the compiled signature), then a random weighted sum of the outputs goes backward
through both. Float32 tolerances: rtol 1e-5 / atol 1e-6 for values (reassociated
reductions and matmul epilogues); gradients pass through more reductions (a conv weight
gradient sums over batch and positions), so they get rtol 1e-4 / atol 1e-5.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

RTOL, ATOL = 1e-5, 1e-6
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    if out is None:
        return []
    raise TypeError(type(out))


def _close(got, want, rtol, atol, what):
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape, (what, g.dtype, w.dtype, g.shape, w.shape)
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(g, w, err_msg=what)


def _clone_inputs(inputs):
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            c = torch.from_numpy(x.detach().numpy().copy())
            out.append(c.requires_grad_() if x.requires_grad else c)
        else:
            out.append(x)
    return out


def check_module(make, make_inputs, train=False, calls=2, seed=0, rtol=RTOL, atol=ATOL,
                 grad_rtol=GRAD_RTOL, grad_atol=GRAD_ATOL, random=False):
    """``make()`` builds the module, ``make_inputs(call)`` the positional inputs."""
    torch.manual_seed(seed)
    module = make()
    module.train(train)
    twin = copy.deepcopy(module)
    compiled = torch.compile(module, fullgraph=True)
    rng = np.random.default_rng(seed)
    for call in range(calls):
        inputs = make_inputs(call)
        twin_inputs = _clone_inputs(inputs)
        torch.manual_seed(100 + call)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _flat(compiled(*inputs))
        torch.manual_seed(100 + call)
        want = _flat(twin(*twin_inputs))
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            _close(g.detach().numpy(), w.detach().numpy(), rtol, atol, f"call {call} output {k}")
        for (name, b), (_, bt) in zip(module.named_buffers(), twin.named_buffers()):
            _close(b.numpy(), bt.numpy(), rtol, atol, f"call {call} buffer {name}")
        diff = [(g, w) for g, w in zip(got, want) if w.requires_grad]
        if not diff:
            continue
        loss_c, loss_e = 0, 0
        for g, w in diff:
            weight = torch.from_numpy(rng.uniform(0.5, 1.5, w.shape).astype(w.detach().numpy().dtype))
            loss_c = loss_c + (g * weight).sum()
            loss_e = loss_e + (w * weight).sum()
        loss_c.backward()
        loss_e.backward()
        for k, (x, xt) in enumerate(zip(inputs, twin_inputs)):
            if isinstance(x, torch.Tensor) and x.requires_grad:
                _close(x.grad.numpy(), xt.grad.numpy(), grad_rtol, grad_atol,
                       f"call {call} input {k} grad")
        for (name, p), (_, pt) in zip(module.named_parameters(), twin.named_parameters()):
            assert (p.grad is None) == (pt.grad is None), name
            if p.grad is not None:
                _close(p.grad.numpy(), pt.grad.numpy(), grad_rtol, grad_atol,
                       f"call {call} grad of {name}")
    info = compiled.cache_info()
    assert info.misses == 1, info


def randn(*shape, grad=True, seed=None):
    rng = np.random.default_rng(seed if seed is not None else hash(shape) % 1000)
    t = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    return t.requires_grad_() if grad else t


def fixed(*shape, grad=True):
    """Inputs the same on every call."""
    return lambda call: [randn(*shape, grad=grad, seed=call)]


# ---- layers ----------------------------------------------------------------------------

LAYERS = {
    "linear": (lambda: nn.Linear(5, 3), fixed(4, 5)),
    "linear_3d": (lambda: nn.Linear(5, 3), fixed(2, 4, 5)),
    "linear_nobias": (lambda: nn.Linear(5, 3, bias=False), fixed(4, 5)),
    "bilinear": (lambda: nn.Bilinear(3, 4, 2),
                 lambda call: [randn(5, 3, seed=call), randn(5, 4, seed=call + 7)]),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3), fixed(2, 3, 9)),
    "conv1d_stride_pad_dil": (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                              fixed(2, 4, 11)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3), fixed(2, 2, 6, 6)),
    "conv2d_stride_pad": (lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 2)),
                          fixed(2, 2, 7, 6)),
    "conv2d_dilation_groups": (lambda: nn.Conv2d(4, 6, 3, padding=1, dilation=2, groups=2),
                               fixed(1, 4, 7, 7)),
    "conv2d_depthwise_nobias": (lambda: nn.Conv2d(3, 3, 3, groups=3, bias=False), fixed(2, 3, 5, 5)),
    "conv2d_same": (lambda: nn.Conv2d(2, 2, 3, padding="same"), fixed(1, 2, 5, 5)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
                         fixed(2, 3, 4, 4)),
    "conv_transpose2d_groups": (lambda: nn.ConvTranspose2d(4, 4, 2, stride=1, groups=2, dilation=2),
                                fixed(1, 4, 3, 3)),
    "maxpool2d": (lambda: nn.MaxPool2d(2), fixed(2, 3, 6, 6)),
    "maxpool2d_overlap": (lambda: nn.MaxPool2d(3, stride=2, padding=1), fixed(2, 2, 7, 7)),
    "maxpool2d_dilation_ceil": (lambda: nn.MaxPool2d(2, stride=2, dilation=2, ceil_mode=True),
                                fixed(1, 2, 7, 7)),
    "avgpool2d": (lambda: nn.AvgPool2d(2), fixed(2, 3, 6, 6)),
    "avgpool2d_pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                      fixed(2, 2, 7, 7)),
    "avgpool2d_ceil": (lambda: nn.AvgPool2d(2, ceil_mode=True), fixed(1, 2, 5, 5)),
    "adaptive_avgpool2d": (lambda: nn.AdaptiveAvgPool2d((2, 3)), fixed(2, 3, 5, 7)),
    "adaptive_avgpool2d_1": (lambda: nn.AdaptiveAvgPool2d(1), fixed(2, 3, 4, 4)),
    "layernorm": (lambda: nn.LayerNorm(6), fixed(3, 4, 6)),
    "layernorm_2d_shape": (lambda: nn.LayerNorm((4, 6)), fixed(3, 4, 6)),
    "layernorm_no_affine": (lambda: nn.LayerNorm(6, elementwise_affine=False), fixed(3, 6)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), fixed(3, 4, 5)),
    "groupnorm_2d": (lambda: nn.GroupNorm(3, 6), fixed(2, 6, 3, 3)),
    "embedding": (lambda: nn.Embedding(10, 4),
                  lambda call: [torch.tensor([[1, 3, 3], [0, 9, call]])]),
    "embedding_padding_idx": (lambda: nn.Embedding(10, 4, padding_idx=0),
                              lambda call: [torch.tensor([0, 2, 0, 5])]),
    "dropout_eval": (lambda: nn.Dropout(0.5), fixed(4, 5)),
    "flatten": (lambda: nn.Flatten(), fixed(2, 3, 4)),
    "sequential_mlp": (lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)),
                       fixed(5, 6)),
    "cnn": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)),
            fixed(2, 1, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer(name):
    make, inputs = LAYERS[name]
    check_module(make, inputs)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,make,shape", [
    ("bn1d", lambda: nn.BatchNorm1d(4), (6, 4)),
    ("bn1d_3d", lambda: nn.BatchNorm1d(3), (4, 3, 5)),
    ("bn2d", lambda: nn.BatchNorm2d(3), (2, 3, 4, 4)),
    ("bn2d_no_affine", lambda: nn.BatchNorm2d(3, affine=False), (2, 3, 3, 3)),
    ("bn2d_no_stats", lambda: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 3, 3)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_batch_norm(name, make, shape, train):
    def make_trained():
        m = make()
        if m.running_mean is not None:  # non-trivial running statistics for eval mode
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
        return m
    check_module(make_trained, lambda call: [randn(*shape, seed=call)], train=train, calls=3)


def test_dropout_train_draws_from_the_global_generator():
    check_module(lambda: nn.Dropout(0.3), fixed(6, 7), train=True, calls=3)
    check_module(lambda: nn.Dropout2d(0.5), fixed(3, 4, 2, 2), train=True, calls=2)


def test_dropout_train_same_seed_same_mask():
    compiled = torch.compile(lambda x: F.dropout(x, 0.5, training=True), fullgraph=True)
    x = torch.ones(8, 8)
    torch.manual_seed(3)
    a = compiled(x)
    b = compiled(x)
    torch.manual_seed(3)
    ea = F.dropout(x, 0.5, training=True)
    eb = F.dropout(x, 0.5, training=True)
    assert np.array_equal(a.numpy(), ea.numpy()) and np.array_equal(b.numpy(), eb.numpy())
    assert not np.array_equal(a.numpy(), b.numpy())


# ---- activations -----------------------------------------------------------------------

ACTIVATIONS = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "mish": nn.Mish, "selu": nn.SELU,
    "hardsigmoid": nn.Hardsigmoid, "hardswish": nn.Hardswish,
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": lambda: nn.ELU(0.7), "celu": lambda: nn.CELU(1.3),
    "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"), "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh, "logsigmoid": nn.LogSigmoid, "softsign": nn.Softsign,
    "tanhshrink": nn.Tanhshrink, "softplus": lambda: nn.Softplus(beta=2.0, threshold=3.0),
    "hardtanh": lambda: nn.Hardtanh(-0.5, 0.8), "threshold": lambda: nn.Threshold(0.1, -2.0),
    "softmax": lambda: nn.Softmax(-1), "softmax_dim0": lambda: nn.Softmax(0),
    "log_softmax": lambda: nn.LogSoftmax(1), "softmin": lambda: nn.Softmin(-1),
    "glu": lambda: nn.GLU(-1), "prelu": nn.PReLU, "prelu_channels": lambda: nn.PReLU(4),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name):
    def inputs(call):
        x = randn(3, 4, 6, grad=False, seed=call) * 3
        x._data[0, 0, :3] = [0.0, 20.0, -20.0]  # kinks and saturation
        return [x.requires_grad_()]
    check_module(ACTIVATIONS[name], inputs)


# ---- losses ----------------------------------------------------------------------------

def _labels(n, classes, seed, ignore=None):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    if ignore is not None:
        t[::3] = ignore
    return torch.from_numpy(t.astype(np.int64))


def _probs(*shape, seed):
    return F.softmax(randn(*shape, grad=False, seed=seed), -1)


def _unit(*shape, seed):
    return torch.sigmoid(randn(*shape, grad=False, seed=seed))


def _signs(n, seed):
    return torch.from_numpy(np.where(np.random.default_rng(seed).random(n) < 0.5, -1.0, 1.0)
                            .astype(np.float32))


LOSSES = {
    "mse": (nn.MSELoss, lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 9)]),
    "mse_sum": (lambda: nn.MSELoss(reduction="sum"),
                lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 9)]),
    "l1_none": (lambda: nn.L1Loss(reduction="none"),
                lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 9)]),
    "smooth_l1": (lambda: nn.SmoothL1Loss(beta=0.5),
                  lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 9)]),
    "huber": (lambda: nn.HuberLoss(delta=0.7),
              lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 9)]),
    "nll": (nn.NLLLoss, lambda c: [F.log_softmax(randn(6, 4, grad=False, seed=c), 1).requires_grad_(),
                                   _labels(6, 4, c)]),
    "nll_weight_ignore": (lambda: nn.NLLLoss(weight=torch.tensor([1.0, 2.0, 0.5, 1.5]), ignore_index=2),
                          lambda c: [randn(6, 4, seed=c), _labels(6, 4, c)]),
    "cross_entropy": (nn.CrossEntropyLoss, lambda c: [randn(6, 5, seed=c), _labels(6, 5, c)]),
    "cross_entropy_spatial": (nn.CrossEntropyLoss,
                              lambda c: [randn(2, 4, 3, 3, seed=c),
                                         _labels(18, 4, c).reshape(2, 3, 3)]),
    "cross_entropy_ignore_index": (lambda: nn.CrossEntropyLoss(ignore_index=-1),
                                   lambda c: [randn(7, 5, seed=c), _labels(7, 5, c, ignore=-1)]),
    "cross_entropy_label_smoothing": (lambda: nn.CrossEntropyLoss(label_smoothing=0.2),
                                      lambda c: [randn(6, 5, seed=c), _labels(6, 5, c)]),
    "cross_entropy_weight_smoothing_ignore": (
        lambda: nn.CrossEntropyLoss(weight=torch.tensor([1.0, 0.5, 2.0]), ignore_index=1,
                                    label_smoothing=0.1),
        lambda c: [randn(8, 3, seed=c), _labels(8, 3, c)]),
    "cross_entropy_probabilities": (nn.CrossEntropyLoss,
                                    lambda c: [randn(6, 5, seed=c), _probs(6, 5, seed=c + 3)]),
    "cross_entropy_probabilities_smoothing": (
        lambda: nn.CrossEntropyLoss(label_smoothing=0.3, reduction="sum"),
        lambda c: [randn(6, 5, seed=c), _probs(6, 5, seed=c + 3)]),
    "cross_entropy_none": (lambda: nn.CrossEntropyLoss(reduction="none"),
                           lambda c: [randn(6, 5, seed=c), _labels(6, 5, c)]),
    "bce": (nn.BCELoss, lambda c: [_unit(4, 5, seed=c).requires_grad_(), _unit(4, 5, seed=c + 1)]),
    "bce_weight": (lambda: nn.BCELoss(weight=torch.rand(5)),
                   lambda c: [_unit(4, 5, seed=c).requires_grad_(), _unit(4, 5, seed=c + 1)]),
    "bce_with_logits": (lambda: nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 2.0, 0.5])),
                        lambda c: [(randn(4, 3, grad=False, seed=c) * 5).requires_grad_(),
                                   _unit(4, 3, seed=c + 1)]),
    "kl_div": (lambda: nn.KLDivLoss(reduction="batchmean"),
               lambda c: [F.log_softmax(randn(4, 5, grad=False, seed=c), -1).requires_grad_(),
                          _probs(4, 5, seed=c + 2)]),
    "kl_div_log_target": (lambda: nn.KLDivLoss(reduction="sum", log_target=True),
                          lambda c: [randn(4, 5, seed=c), randn(4, 5, grad=False, seed=c + 2)]),
    "poisson_nll": (nn.PoissonNLLLoss,
                    lambda c: [randn(4, 5, seed=c), _unit(4, 5, seed=c + 1) * 3]),
    "poisson_nll_full": (lambda: nn.PoissonNLLLoss(log_input=False, full=True),
                         lambda c: [_unit(4, 5, seed=c).requires_grad_(), _unit(4, 5, seed=c + 1) * 3]),
    "margin_ranking": (lambda: nn.MarginRankingLoss(0.3),
                       lambda c: [randn(6, seed=c), randn(6, seed=c + 1), _signs(6, c)]),
    "cosine_embedding": (lambda: nn.CosineEmbeddingLoss(0.2),
                         lambda c: [randn(6, 4, seed=c), randn(6, 4, seed=c + 1), _signs(6, c)]),
    "cosine_similarity": (nn.CosineSimilarity, lambda c: [randn(6, 4, seed=c), randn(6, 4, seed=c + 1)]),
    "pairwise_distance": (nn.PairwiseDistance, lambda c: [randn(6, 4, seed=c), randn(6, 4, seed=c + 1)]),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss(name):
    make, inputs = LOSSES[name]
    check_module(make, inputs)


# ---- recurrent and attention -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_one_compile_per_length(kind):
    torch.manual_seed(0)
    module = getattr(nn, kind)(3, 4, num_layers=2 if kind == "LSTM" else 1, batch_first=True)
    twin = copy.deepcopy(module)
    compiled = torch.compile(module, fullgraph=True)
    rng = np.random.default_rng(0)
    for n, length in enumerate((1, 2, 4, 2)):
        x = randn(2, length, 3, seed=length)
        xt = _clone_inputs([x])[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _flat(compiled(x))
        want = _flat(twin(xt))
        for k, (g, w) in enumerate(zip(got, want)):
            _close(g.detach().numpy(), w.detach().numpy(), RTOL, ATOL, f"len {length} out {k}")
        weights = [torch.from_numpy(rng.uniform(0.5, 1.5, w.shape).astype(np.float32)) for w in want]
        sum((g * w).sum() for g, w in zip(got, weights)).backward()
        sum((e * w).sum() for e, w in zip(want, weights)).backward()
        _close(x.grad.numpy(), xt.grad.numpy(), GRAD_RTOL, GRAD_ATOL, f"len {length} x grad")
        for (name, p), (_, pt) in zip(module.named_parameters(), twin.named_parameters()):
            _close(p.grad.numpy(), pt.grad.numpy(), GRAD_RTOL, GRAD_ATOL, f"len {length} {name}")
        assert compiled.cache_info().misses == min(n + 1, 3)  # length 2 again: a cache hit


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_with_initial_state(kind):
    def make():
        return getattr(nn, kind)(3, 4, bidirectional=True) if kind != "RNN" else \
            nn.RNN(3, 4, nonlinearity="relu", bidirectional=True)

    def inputs(call):
        x = randn(2, 2, 3, seed=call)
        h = randn(2, 2, 4, seed=call + 10)
        return [x, (h, randn(2, 2, 4, seed=call + 20))] if kind == "LSTM" else [x, h]
    check_module(make, inputs)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_recurrent_cells(kind):
    check_module(lambda: getattr(nn, kind)(3, 5), fixed(4, 3))


def test_multihead_attention():
    check_module(lambda: nn.MultiheadAttention(8, 2, batch_first=True),
                 lambda c: [randn(2, 5, 8, seed=c), randn(2, 4, 8, seed=c + 1),
                            randn(2, 4, 8, seed=c + 2)])


def test_multihead_attention_masks():
    mask = torch.tensor([[False, False, True, False], [False, False, False, True]])

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 4, kdim=6, vdim=5)

        def forward(self, q, k, v):
            return self.mha(q, k, v, key_padding_mask=mask, average_attn_weights=False)
    check_module(Masked, lambda c: [randn(3, 2, 8, seed=c), randn(4, 2, 6, seed=c + 1),
                                    randn(4, 2, 5, seed=c + 2)])


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer(norm_first):
    check_module(lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                                    batch_first=True, norm_first=norm_first,
                                                    activation="gelu"),
                 lambda c: [randn(2, 5, 8, seed=c)])


def test_transformer_encoder_layer_train_dropout_causal():
    class Causal(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.2)

        def forward(self, x):
            n = x.shape[0]
            mask = torch.from_numpy(np.triu(np.full((n, n), -np.inf, np.float32), 1))
            return self.layer(x, src_mask=mask)
    check_module(Causal, lambda c: [randn(5, 2, 8, seed=c)], train=True)


# ---- in-place writes to tensors the function does not own -------------------------------

def test_batch_norm_cumulative_average_falls_back_and_keeps_the_module_intact():
    """momentum=None reads num_batches_tracked.item(): the trace stops after writing a
    buffer; the buffer must hold its concrete value again for the eager fallback."""
    bn, twin = nn.BatchNorm1d(3, momentum=None), nn.BatchNorm1d(3, momentum=None)
    compiled = torch.compile(bn)
    for call in range(2):
        x = randn(4, 3, grad=False, seed=call)
        if call == 0:
            with pytest.warns(RuntimeWarning, match="cannot be traced"):
                got = compiled(x)
        else:  # the signature's eager fallback is cached: no second warning
            got = compiled(x)
        _close(got.detach().numpy(), twin(x).detach().numpy(), RTOL, ATOL, "output")
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            _close(getattr(bn, name).numpy(), getattr(twin, name).numpy(), RTOL, ATOL, name)


def test_in_place_writes_to_captured_tensors_and_arguments_happen_on_every_call():
    state = torch.zeros(3)
    counter = torch.tensor(0)
    log = torch.ones(2, 3)

    def step(x, y):
        state.mul_(0.5).add_(x.sum(0))
        counter.add_(1)
        log.copy_(x[:2] * 2)   # written without being read
        y.add_(state)          # an argument
        return (x * state).sum()

    eager_state = [torch.zeros(3), torch.tensor(0), torch.ones(2, 3)]

    def eager_step(x, y):
        eager_state[0].mul_(0.5).add_(x.sum(0))
        eager_state[1].add_(1)
        eager_state[2].copy_(x[:2] * 2)
        y.add_(eager_state[0])
        return (x * eager_state[0]).sum()

    compiled = torch.compile(step, fullgraph=True)
    for call in range(3):
        x = randn(4, 3, grad=False, seed=call)
        y, y_eager = torch.ones(3), torch.ones(3)
        v0 = y._version[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = compiled(x, y)
        want = eager_step(x, y_eager)
        _close(got.numpy(), want.numpy(), RTOL, ATOL, "result")
        _close(y.numpy(), y_eager.numpy(), RTOL, ATOL, "argument")
        assert y._version[0] > v0
        for t, e in zip((state, counter, log), eager_state):
            _close(t.numpy(), e.numpy(), RTOL, ATOL, "captured")
    assert compiled.cache_info().misses == 1


def test_in_place_write_into_a_view_compiles_and_writes_back():
    """(It fell back before NOTE (view writes in a trace) in _ops/writes.py.)"""
    buf = torch.zeros(4, 3)

    def fn(x):
        buf[1:3].add_(x)     # eager writes through the slice into buf
        return buf.sum(0)
    buf_eager = torch.zeros(4, 3)
    x = randn(2, 3, grad=False)
    compiled = torch.compile(fn, fullgraph=True)
    for _ in range(2):       # the write lands in buf at every call
        got = compiled(x)
        buf_eager[1:3].add_(x)
        _close(got.numpy(), buf_eager.sum(0).numpy(), RTOL, ATOL, "result")
        _close(buf.numpy(), buf_eager.numpy(), RTOL, ATOL, "buffer")


@pytest.mark.parametrize("fill, falls_back", [
    (lambda t: t.uniform_(-1, 1), False),  # recorded as RAND: drawn afresh at every call
    (lambda t: t.exponential_(2.0), True),
])
def test_random_values_drawn_while_tracing_fall_back(fill, falls_back):
    """A random fill with no primitive draws eagerly even inside a trace: baking the draw
    would repeat it, so the function falls back; one with a primitive compiles."""
    noise = torch.zeros(5)

    def fn(x):
        fill(noise)
        return x + noise
    compiled = torch.compile(fn)
    x = torch.zeros(5)
    torch.manual_seed(4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        a = compiled(x).numpy().copy()
    assert any("random generator" in str(w.message) for w in seen) == falls_back
    b = compiled(x).numpy().copy()
    assert not np.allclose(a, b)
    torch.manual_seed(4)
    _close(a, fn(x).numpy(), RTOL, ATOL, "first call")
    _close(b, fn(x).numpy(), RTOL, ATOL, "second call")


def test_an_unused_parameter_gets_no_gradient_as_in_eager():
    """An optimizer skips a parameter whose .grad is None (weight decay, momentum)."""
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(3, 2)
            self.unused = nn.Linear(3, 2)

        def forward(self, x):
            return self.used(x)
    check_module(TwoHeads, fixed(4, 3))
