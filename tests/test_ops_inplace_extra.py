"""The ``_`` forms of the ops added in _ops/{aliases,elementwise_extra,special_eager,
index_writes,products}.py against torch's, and PyTorch's refusal to write a float result
into an integer tensor in place."""
import numpy as np
import pytest

import tracegrad as tg
from torch_parity_testing import compare

torch = pytest.importorskip("torch")
rng = np.random.default_rng(5)
F = rng.uniform(0.1, 0.9, (3, 4))
INTS = rng.integers(1, 30, (3, 4))


@pytest.mark.parametrize("call,data", [
    (lambda m, x: x.sgn_(), F - 0.5), (lambda m, x: x.deg2rad_(), F),
    (lambda m, x: x.rad2deg_(), F),
    (lambda m, x: x.erfc_(), F), (lambda m, x: x.erfinv_(), F), (lambda m, x: x.lgamma_(), F),
    (lambda m, x: x.digamma_(), F), (lambda m, x: x.polygamma_(2), F),
    (lambda m, x: x.mvlgamma_(p=2), F + 1), (lambda m, x: x.logit_(0.2), F), (lambda m, x: x.sinc_(), F),
    (lambda m, x: x.ldexp_(m.tensor([1.0, 2.0, 0.0, -1.0], dtype=x.dtype)), F),
    (lambda m, x: x.float_power_(2), F),
    (lambda m, x: x.heaviside_(m.tensor(0.5, dtype=x.dtype)), F - 0.5),
    (lambda m, x: x.nextafter_(m.zeros_like(x)), F), (lambda m, x: x.gcd_(m.tensor([6])), INTS),
    (lambda m, x: x.lcm_(m.tensor([6])), INTS),
    (lambda m, x: x.addmv_(m.arange(6, dtype=x.dtype).reshape(3, 2), m.ones(2, dtype=x.dtype)),
     F[:, 0]),
    (lambda m, x: x.addr_(m.ones(3, dtype=x.dtype), m.arange(4, dtype=x.dtype), alpha=2), F),
    (lambda m, x: x.addbmm_(m.ones(2, 3, 5, dtype=x.dtype), m.ones(2, 5, 4, dtype=x.dtype)), F),
    (lambda m, x: x.baddbmm_(m.ones(3, 3, 5, dtype=x.dtype), m.ones(3, 5, 4, dtype=x.dtype),
                             beta=0.5), np.stack([F] * 3)),
])
def test_inplace_equals_torch(call, data):
    def run(m, x):
        y = x.clone()
        out = call(m, y)
        assert out is y
        return y
    compare(run, run, data)


@pytest.mark.parametrize("name,args", [("deg2rad_", ()), ("lgamma_", ()), ("sinc_", ()),
                                       ("logit_", ()), ("erfc_", ())])
def test_float_results_are_refused_for_integer_tensors(name, args):
    with pytest.raises(RuntimeError):
        getattr(torch.tensor([1, 2]), name)(*args)
    with pytest.raises(RuntimeError, match=name + r".*Float.*Long"):
        getattr(tg.tensor([1, 2]), name)(*args)


def test_float_power_needs_float64():
    with pytest.raises(RuntimeError, match="float_power_.*float32"):
        tg.ones(2).float_power_(2)
    compare(lambda m, x: x.clone().float_power_(3), lambda m, x: x.clone().float_power_(3),
            np.array([1.5, 2.0]))
