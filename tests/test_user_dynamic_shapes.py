"""Issue 13 as a user's program sees it (``import tracegrad as torch``): compile counts
over a DataLoader epoch, sequence lengths and Python branches on sizes, every value
against eager."""
from __future__ import annotations

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn
from tracegrad.utils.data import DataLoader, TensorDataset


def _equal(compiled, fn, *args):
    np.testing.assert_allclose(compiled(*args).detach().numpy(),
                               fn(*args).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dataloader_epochs_with_a_short_last_batch_compile_once_per_kind():
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(100, 8), torch.randint(0, 4, (100,)))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    @torch.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    for _ in range(3):
        for x, y in DataLoader(data, batch_size=32, shuffle=True):
            step(x, y)
    # batch 32 (no .grad yet), batch 32 with .grad, the short batch of 4 served by s0
    assert step.cache_info().misses <= 3


def test_transformer_layer_over_18_lengths_compiles_at_most_twice():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    compiled = torch.compile(layer)
    with torch.no_grad():
        for length in range(3, 21):
            x = torch.randn(2, length, 16)
            np.testing.assert_allclose(compiled(x).numpy(), layer(x).numpy(), rtol=1e-4,
                                       atol=1e-5)
    assert compiled.cache_info().misses <= 2


def test_a_branch_on_a_small_size_threshold_stays_symbolic():
    """NOTE (a guard near the call's size) in compiler/fit_checks.py: the fit probes the
    sizes on the call's side of the branch (the usual probes 5, 9 lie past it), and a size
    on the other side gets a fit of its own (before: the dim was not symbolic for good and
    every new size compiled)."""
    def branch(x):
        return x * 2 if x.shape[0] > 6 else x - 1
    compiled = torch.compile(branch)
    sizes = (3, 4, 5, 2, 8, 9, 10, 12, 6)
    for n in sizes:
        _equal(compiled, branch, torch.randn(n, 3))
    # the first size, the symbolic trace (s0 <= 6), then one for the other branch
    assert compiled.cache_info().misses <= 3
    for n in (7, 30, 3, 2, 44):
        _equal(compiled, branch, torch.randn(n, 3))
    info = compiled.cache_info()
    assert info.misses <= 3, info
    assert "s0 <= 6; fit 2, s0 > 6" in info.symbolic[0], info.symbolic


def test_each_side_of_a_window_on_the_size_is_one_program():
    """NOTE (a guard near the call's size): a window ``3 < n < 9`` splits the sizes in
    three; each side is served by one symbolic program whichever side comes first."""
    def window(x):
        return x.exp() if 3 < x.shape[0] < 9 else x * 3
    for first in ((5, 6), (20, 30), (2, 3)):
        compiled = torch.compile(window)
        for n in (*first, 4, 7, 8, 2, 3, 9, 15, 40, 5, 6):
            _equal(compiled, window, torch.randn(n, 3))
        info = compiled.cache_info()
        # the first size, one compile per side of the window that holds enough sizes to
        # fit, and 2 and 3 (too few below it: specialised, or served by the program of
        # the branch they take when that fit came first)
        assert info.misses <= 5, (first, info)
        assert "2 fits" in info.symbolic[0], info.symbolic
