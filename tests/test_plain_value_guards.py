"""A plain number a compiled function reads (a global, a closure dict item, a module
attribute) is baked into its trace by type and bits, so its guard must tell 2 from 2.0
and 0.0 from -0.0, which ``==`` does not (NOTE (plain keys) in compiler/python_guards.py)."""
import numpy as np

import tracegrad as torch
from tracegrad import nn

S = 0.0


def test_a_dict_item_changing_from_int_to_float_retraces():
    cfg = {"s": 2}
    f = torch.compile(lambda x: x * cfg["s"])
    x = torch.tensor([1, 2, 3])
    assert f(x).dtype == torch.int64
    cfg["s"] = 2.0
    got = f(x)
    assert got.dtype == (x * 2.0).dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), [2.0, 4.0, 6.0])


def test_a_global_changing_sign_of_zero_retraces():
    global S
    S = 0.0
    g = torch.compile(lambda y: 1 / (y * S))
    y = torch.ones(2)
    assert np.all(g(y).numpy() == np.inf)
    S = -0.0
    try:
        assert np.all(g(y).numpy() == -np.inf)
    finally:
        S = 0.0


def test_a_module_attribute_changing_from_int_to_float_retraces():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.k = 2

        def forward(self, x):
            return x * self.k
    m = Scale()
    h = torch.compile(m)
    x = torch.tensor([1, 2, 3])
    assert h(x).dtype == torch.int64
    m.k = 2.0
    assert h(x).dtype == torch.float32


def test_an_unchanged_nan_does_not_retrace():
    cfg = {"s": float("nan")}
    f = torch.compile(lambda x: x + cfg["s"])
    x = torch.ones(2)
    for _ in range(3):
        assert np.isnan(f(x).numpy()).all()
    assert f.cache_info().misses == 1


def test_user_code_in_a_file_named_like_the_package_is_watched():
    """A user's tracegrad_demo.py beside the package folder is user code: its reads are
    guarded (the package's folders are matched with their '/')."""
    from tracegrad.compiler import access_paths
    source = "cfg = {'s': 2.0}\ndef f(x):\n    return x * cfg['s']\n"
    space: dict = {}
    exec(compile(source, access_paths.PACKAGE_DIR.rstrip("/") + "_demo.py", "exec"), space)
    f = torch.compile(space["f"])
    x = torch.ones(3)
    assert float(f(x).sum()) == 6.0
    space["cfg"]["s"] = 3.0
    assert float(f(x).sum()) == 9.0


def test_an_iterated_list_item_changing_from_int_to_float_retraces():
    weights = [2, 3]

    def f(x):
        for w in weights:
            x = x * w
        return x
    c = torch.compile(f)
    x = torch.tensor([1, 2])
    assert c(x).dtype == torch.int64
    weights[0] = 2.0
    assert c(x).dtype == torch.float32


def test_an_iterated_deque_edited_in_place_retraces():
    from collections import deque
    weights = deque([2.0, 3.0])

    def f(x):
        for w in weights:
            x = x * w
        return x
    c = torch.compile(f)
    x = torch.ones(2)
    assert float(c(x).sum()) == 12.0
    weights[0] = 5.0
    assert float(c(x).sum()) == 30.0
