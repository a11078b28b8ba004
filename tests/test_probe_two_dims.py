"""Two dims that change to sizes of their own (batch and sequence length, two inputs of a
cat): a signature has one symbol s0, so ``cache_info()``, ``explain()``, the
``TRACEGRAD_DEBUG`` log and the recompile warning say which dims changed and which stays
specialised (NOTE (dims that change together) in dynamic_dims.py); a dim that then changes
alone becomes s0, the other stays specialised; each value as eager mode's."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.compiler import dynamic
from tracegrad.compiler.debug import set_debug_level


@pytest.fixture(autouse=True)
def _check_instances(monkeypatch):
    """Every program a symbolic group serves is also planned for real and compared."""
    monkeypatch.setattr(dynamic, "CHECK_INSTANCES", True)


def _pool(x):
    return torch.relu(x * 2.0 - 0.5).mean(dim=1)


def _joined(x, y):
    return torch.cat([x, y], 0) * 3.0


def _check(compiled, fn, *shapes):
    args = [torch.randn(*s) for s in shapes]
    np.testing.assert_allclose(compiled(*args).numpy(), fn(*args).numpy(), rtol=1e-5,
                               atol=1e-6)


def _specialised(lines):
    return [line for line in lines if line.startswith("specialised: ")]


@pytest.mark.parametrize("dynamic", [None, True])
def test_batch_and_length_changing_together_say_why_and_then_bind_one(dynamic, caplog):
    c = torch.compile(_pool, dynamic=dynamic)
    set_debug_level(1)
    try:
        with caplog.at_level("DEBUG", logger="tracegrad"):
            _check(c, _pool, (4, 10, 8))
            _check(c, _pool, (6, 12, 8))
    finally:
        set_debug_level(0)
    assert c.cache_info().misses == 2
    why = ("arg 0 dim 0 4 -> 6, arg 0 dim 1 10 -> 12: changed together to different sizes "
           "since the latest call; only one symbolic size (s0) per signature is supported")
    # old: no line at all (both dims silently specialised)
    lines = _specialised(c.cache_info().symbolic)
    assert len(lines) == 1 and why in lines[0] and "no dim chosen, each stays specialised" \
        in lines[0], lines
    assert why in caplog.text
    report = "\n".join(c.explain(torch.randn(6, 12, 8)).symbolic)
    assert why in report
    # the length changes alone (batch 6 again): it becomes s0, the batch stays specialised
    _check(c, _pool, (6, 15, 8))
    info = c.cache_info()
    assert info.misses == 3
    assert any(line.startswith("s0 = arg 0 dim 1") for line in info.symbolic), info.symbolic
    for t in (20, 33, 7):
        _check(c, _pool, (6, t, 8))
    assert c.cache_info().misses == 3
    _check(c, _pool, (9, 20, 8))   # another batch size: not served by the (6, s0) group
    assert c.cache_info().misses == 4


def test_loader_over_variable_lengths_with_a_short_last_batch_compiles_a_bounded_number():
    lin = torch.nn.Linear(8, 8)

    def step(x):
        return torch.relu(lin(x)).mean(dim=1)
    for mode in (None, True):
        c = torch.compile(step, dynamic=mode)
        rng = random.Random(1)   # (0: the last batch came at the length of the latest
        # compile; the batch alone changed then, and became s0 there: 4 compiles)
        for _ in range(2):   # two epochs of 165 sequences: 10 batches of 16 and one of 5
            for k in range(11):
                x = torch.randn(16 if k < 10 else 5, rng.randint(10, 40), 8)
                np.testing.assert_allclose(c(x).detach().numpy(), step(x).detach().numpy(),
                                           rtol=1e-5, atol=1e-6)
        assert c.cache_info().misses <= 3, (mode, c.cache_info())   # old: 4


def test_a_short_batch_binds_the_length_a_full_batch_group_served_many_sizes_of():
    c = torch.compile(_pool)
    for t in (10, 14, 17, 23, 31):   # batch 16: the length becomes s0 at 14, serves 14..31
        _check(c, _pool, (16, t, 8))
    assert c.cache_info().misses == 2
    _check(c, _pool, (5, 12, 8))     # batch and length change together
    lines = _specialised(c.cache_info().symbolic)
    assert len(lines) == 1 and ("arg 0 dim 1 chosen as s0 (a group binding it served 4 "
                                "sizes); specialised: arg 0 dim 0") in lines[0], lines
    assert any(line.startswith("s0 = arg 0 dim 1") and "[5, 1*s0, 8]" in line
               for line in c.cache_info().symbolic)
    for t in (19, 40, 11):   # old: a compile at 19 (there the length changed alone)
        _check(c, _pool, (5, t, 8))
    _check(c, _pool, (16, 27, 8))
    assert c.cache_info().misses == 3


def test_cat_of_two_inputs_of_independent_sizes():
    c = torch.compile(_joined)
    _check(c, _joined, (3, 8), (5, 8))
    _check(c, _joined, (4, 8), (7, 8))
    lines = _specialised(c.cache_info().symbolic)
    assert len(lines) == 1 and "arg 0 dim 0 3 -> 4, arg 1 dim 0 5 -> 7: changed together" \
        in lines[0], lines
    _check(c, _joined, (4, 8), (9, 8))   # arg 1's rows change alone: s0, arg 0 stays 4
    assert any(line.startswith("s0 = arg 1 dim 0") for line in c.cache_info().symbolic)
    for m in (2, 11, 30):
        _check(c, _joined, (4, 8), (m, 8))
    assert c.cache_info().misses == 3
    _check(c, _joined, (6, 8), (11, 8))
    assert c.cache_info().misses == 4


def test_mark_dynamic_on_two_dims_of_different_sizes_says_which_stays_specialised():
    c = torch.compile(_pool)

    def marked(b, t):
        x = torch.randn(b, t, 8)
        torch.compiler.mark_dynamic(x, 0)
        torch.compiler.mark_dynamic(x, 1)
        np.testing.assert_allclose(c(x).numpy(), _pool(x).numpy(), rtol=1e-5, atol=1e-6)
    marked(4, 10)
    lines = _specialised(c.cache_info().symbolic)
    assert len(lines) == 1 and ("mark_dynamic named dims of different sizes (arg 0 dim 0 = "
                                "4, arg 0 dim 1 = 10)") in lines[0], lines
    assert "each stays specialised" in lines[0]
    marked(4, 13)    # dim 1 changed alone: chosen
    assert any(line.startswith("s0 = arg 0 dim 1") for line in c.cache_info().symbolic)
    assert any("arg 0 dim 1 chosen as s0" in line
               for line in _specialised(c.cache_info().symbolic))
    marked(4, 21)
    assert c.cache_info().misses == 2
    marked(5, 5)     # equal sizes: both dims s0 as before (their own group)
    marked(6, 6)


def test_recompile_warning_names_the_dims_that_change_together():
    c = torch.compile(_pool)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for b, t in [(2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17),
                     (18, 19), (20, 21)]:
            _check(c, _pool, (b, t, 4))
    messages = [str(w.message) for w in caught if "has been compiled for" in str(w.message)]
    assert len(messages) == 1
    assert "Specialised: arg 0 dim 0 " in messages[0]
    assert "changed together to different sizes" in messages[0]
