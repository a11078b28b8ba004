"""Fuzz 7: seeded random training steps compiled whole (forward, backward, optimizer) and
called 6 times at varying batch sizes (1, a short last batch, 2-13), against the same step
run eagerly on a twin model: random models (Linear, BatchNorm1d with its running stats,
LayerNorm, Tanh/ReLU/GELU), losses (cross_entropy with ignore_index, label_smoothing,
class weights; mse), optimizers (SGD with momentum/nesterov/weight decay, Adam, AdamW,
RMSprop), gradient accumulation over micro-batches, zero_grad(set_to_none=True/False)
mixes, and train()/eval() or lr changes between calls. Losses, parameters, gradients and
buffers must agree at every call, and a step eager refuses (BatchNorm over one sample)
must raise compiled too. FUZZ7_STEP_SEEDS=n runs more."""
import os
import warnings

import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn
import tracegrad.nn.functional as F

SEEDS = range(int(os.environ.get("FUZZ7_STEP_SEEDS", "4")))
IN, HIDDEN, CLASSES = 5, 7, 3


def _model(rng_choice):
    norm, act = rng_choice
    layers = [nn.Linear(IN, HIDDEN, bias=norm != "batch")]
    if norm == "batch":
        layers.append(nn.BatchNorm1d(HIDDEN, momentum=0.3))
    elif norm == "layer":
        layers.append(nn.LayerNorm(HIDDEN))
    layers += [{"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}[act](),
               nn.Linear(HIDDEN, CLASSES)]
    return nn.Sequential(*layers)


OPTIMIZERS = {
    "sgd": lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                   weight_decay=1e-3),
    "sgd_plain": lambda ps: tg.optim.SGD(ps, lr=0.05),
    "adam": lambda ps: tg.optim.Adam(ps, lr=0.01),
    "adamw": lambda ps: tg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
}


def _loss(kind, out, y, weight):
    if kind == "mse":
        return F.mse_loss(out, F.one_hot(y.clamp(min=0), CLASSES).float())
    if kind == "ce_smooth":
        return F.cross_entropy(out, y, label_smoothing=0.2)
    if kind == "ce_weight":
        return F.cross_entropy(out, y, weight=weight, ignore_index=-1)
    return F.cross_entropy(out, y, ignore_index=-1, reduction="sum")


def _step(model, opt, x, y, weight, plan):
    """One training step as users write them: micro-batches, then the optimizer."""
    loss_kind, micro, set_to_none = plan
    opt.zero_grad(set_to_none=set_to_none)
    total = 0.0
    chunk = max(1, -(-x.shape[0] // micro))
    for i in range(0, x.shape[0], chunk):
        loss = _loss(loss_kind, model(x[i:i + chunk]), y[i:i + chunk], weight) / micro
        loss.backward()
        total = total + loss.detach()
    opt.step()
    return total


def _state(model):
    named = list(model.named_parameters()) + list(model.named_buffers())
    return [(n, t) for n, t in named] + [(n + ".grad", p.grad)
                                         for n, p in model.named_parameters()]


@pytest.mark.parametrize("seed", SEEDS)
def test_compiled_training_steps_match_eager(seed):
    rng = np.random.default_rng(seed)
    shape = (str(rng.choice(["batch", "layer", "none"])),
             str(rng.choice(["tanh", "relu", "gelu"])))
    opt_name = str(rng.choice(sorted(OPTIMIZERS)))
    plan = (str(rng.choice(["ce", "ce_smooth", "ce_weight", "mse"])),
            int(rng.choice([1, 2, 3])), bool(rng.integers(0, 2)))
    if shape[0] == "batch":   # micro-batches of 2 are batches of 2 (NOTE below): seed 186
        plan = (plan[0], 1, plan[2])
    dynamic = (None, True, False)[int(rng.integers(0, 3))]
    where = f"seed {seed}: model {shape}, {opt_name}, plan {plan}, dynamic={dynamic}"
    models = []
    for _ in range(2):
        tg.manual_seed(seed)
        models.append(_model(shape))
    opts = [OPTIMIZERS[opt_name](m.parameters()) for m in models]
    weight = tg.tensor(rng.uniform(0.5, 2, CLASSES).astype(np.float32))
    eager = lambda x, y: _step(models[0], opts[0], x, y, weight, plan)   # noqa: E731
    compiled = tg.compile(lambda x, y: _step(models[1], opts[1], x, y, weight, plan),
                          dynamic=dynamic)
    for call in range(6):
        # NOTE: no batch of 2 under BatchNorm: its outputs are then +-1 whatever the input,
        # the first layer's gradient is rounding noise, and RMSprop/Adam scale that noise
        # to steps of the order of lr (seed 65: 1.3e-4 apart)
        b = int(rng.choice([1, 3, 5, 8, 13] if shape[0] == "batch" else [1, 2, 3, 5, 8, 13]))
        x = rng.standard_normal((b, IN)).astype(np.float32)
        y = rng.integers(-1, CLASSES, b)
        if rng.random() < 0.3:
            train = bool(rng.integers(0, 2))
            for m in models:
                m.train(train)
        if rng.random() < 0.3:
            lr = float(rng.choice([0.01, 0.05, 0.2]))
            for o in opts:
                o.param_groups[0]["lr"] = lr
        at = f"{where}, call {call}: batch {b}, train={models[0].training}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                want = eager(tg.tensor(x), tg.tensor(y))
            except Exception as e:   # BatchNorm over one sample in train mode
                with pytest.raises(type(e)):
                    compiled(tg.tensor(x), tg.tensor(y))
                return   # the twins' optimizer states now differ by one partial step
            got = compiled(tg.tensor(x), tg.tensor(y))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"loss, {at}")
        for (name, a), (_, c) in zip(_state(models[0]), _state(models[1])):
            assert (a is None) == (c is None), f"{name}: {a} vs {c}, {at}"
            if a is not None:
                # (to the tensor's scale: a weight of 5.3 next to one of 0.043, seed 102)
                a = a.detach().numpy()
                np.testing.assert_allclose(c.detach().numpy(), a, rtol=1e-5,
                                           atol=1e-6 * max(1.0, float(np.abs(a).max(initial=0))),
                                           err_msg=f"{name}, {at}")
