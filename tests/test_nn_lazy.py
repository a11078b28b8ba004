"""Lazy modules against PyTorch 2.13: the first forward infers the feature size, turns
the module into its ``cls_to_become`` with PyTorch's init distribution; an uninitialized
module saves ``UninitializedParameter`` entries and loads a checkpoint by materialising
from its shapes; outputs and gradients equal torch's once the weights are copied."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)

CASES = [
    ("LazyLinear", (3,), {}, (4, 7)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 5, 9)),
    ("LazyConv2d", (6, 3), {"stride": 2, "groups": 2}, (2, 4, 7, 7)),
    ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 5, 6)),
    ("LazyConvTranspose2d", (4, 3), {"output_padding": 1, "stride": 2}, (2, 3, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (6, 4)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (3, 4, 2, 2)),
    ("LazyBatchNorm3d", (), {"affine": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 4, 6)),
    ("LazyInstanceNorm2d", (), {"track_running_stats": False}, (2, 4, 3, 3)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", CASES, ids=[c[0] for c in CASES])
def test_lazy_module_matches_pytorch(name, args, kwargs, shape):
    ref = getattr(T.nn, name)(*args, **kwargs).double()
    mine = getattr(nn, name)(*args, **kwargs, dtype=tg.float64)
    assert repr(mine) == repr(ref)
    blank = {k: repr(v) for k, v in mine.state_dict().items()}
    assert blank == {k: repr(v) for k, v in ref.state_dict().items()}
    x = rng.standard_normal(shape)
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    mine(gx)   # materialises with tracegrad's own init
    ref(tx)
    assert type(mine).__name__ == type(ref).__name__ == name[4:]
    assert repr(mine) == repr(ref)
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    fresh = getattr(nn, name)(*args, **kwargs, dtype=tg.float64)
    fresh.load_state_dict({k: tg.tensor(v.detach().numpy()) for k, v in
                           ref.state_dict().items()})
    assert type(fresh).__name__ == name   # loading materialises but keeps the class
    a, b = ref(tx), fresh(gx)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    g = rng.standard_normal(tuple(a.shape))
    a.backward(T.tensor(g))
    b.backward(tg.tensor(g))
    for (n1, p), (n2, q) in zip(ref.named_parameters(), fresh.named_parameters()):
        assert n1 == n2
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert type(fresh).__name__ == name[4:]


def test_lazy_linear_init_distribution_and_compile():
    tg.manual_seed(0)
    m = nn.LazyLinear(400)
    x = tg.ones(2, 300)
    m(x)
    w = m.weight.detach().numpy()
    bound = 1 / np.sqrt(300)   # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.99 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound
    step = tg.compile(lambda t: m(t).tanh().sum())
    np.testing.assert_allclose(step(x).item(), m(x).tanh().sum().item(), rtol=1e-5)


def test_uninitialized_parameter_and_errors():
    p = nn.UninitializedParameter()
    assert repr(p) == "<UninitializedParameter>" and p.requires_grad
    with pytest.raises(ValueError, match="uninitialized"):
        p.shape
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and tuple(p.shape) == (2, 3) and p.requires_grad
    with pytest.raises(tg.ShapeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) "
                                            r"input to LazyConv2d"):
        nn.LazyConv2d(3, 3)(tg.ones(2, 3))


def test_lazy_module_pickles_and_loads_uninitialized_checkpoints():
    import io
    import pickle
    m = pickle.loads(pickle.dumps(nn.LazyLinear(3)))   # its hook handles travel too
    m(tg.ones(2, 4))
    assert type(m) is nn.Linear and tuple(m.weight.shape) == (3, 4)
    buf = io.BytesIO()
    tg.save(nn.LazyLinear(3).state_dict(), buf)
    buf.seek(0)
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(tg.load(buf))   # empty entries: still lazy
    assert nn.parameter.is_lazy(fresh.weight)
    fresh.load_state_dict(nn.LazyLinear(3).state_dict())
    fresh(tg.ones(1, 5))
    assert tuple(fresh.weight.shape) == (3, 5)
