"""F.embedding_bag and nn.EmbeddingBag against PyTorch 2.13: values and gradients of the
weight and the per-sample weights, for every mode, offsets, include_last_offset and
padding_idx; compiled against eager; the module's signature, init and state_dict."""
import numpy as np
import pytest

import tracegrad as tg

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)
W = rng.standard_normal((10, 4))
INPUT = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])
OFFSETS = np.array([0, 2, 2, 5])


def _both(inp, offs, mode, psw=None, pad=None, last=False):
    tw, gw = T.tensor(W, requires_grad=True), tg.tensor(W, requires_grad=True)
    tp = T.tensor(psw, requires_grad=True) if psw is not None else None
    gp = tg.tensor(psw, requires_grad=True) if psw is not None else None
    kw = dict(mode=mode, padding_idx=pad, include_last_offset=last)
    a = T.nn.functional.embedding_bag(T.tensor(inp), tw, None if offs is None else
                                      T.tensor(offs), per_sample_weights=tp, **kw)
    b = tg.nn.functional.embedding_bag(tg.tensor(inp), gw, None if offs is None else
                                       tg.tensor(offs), per_sample_weights=gp, **kw)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(tuple(a.shape))
    a.backward(T.tensor(g))
    b.backward(tg.tensor(g))
    np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-15)
    if psw is not None:
        np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("pad", [None, 4])
def test_values_and_gradients_match_pytorch(mode, pad):
    _both(INPUT, OFFSETS, mode, pad=pad)          # bag 1 is empty
    _both(INPUT, OFFSETS, mode, pad=pad, last=True)
    _both(INPUT.reshape(3, 3), None, mode, pad=pad)


def test_per_sample_weights_match_pytorch():
    _both(INPUT, OFFSETS, "sum", psw=rng.standard_normal(9))
    _both(INPUT, OFFSETS, "sum", psw=rng.standard_normal(9), pad=2)
    _both(INPUT.reshape(3, 3), None, "sum", psw=rng.standard_normal((3, 3)))


def test_bad_arguments_name_the_op():
    w, i = tg.tensor(W), tg.tensor(INPUT)
    F = tg.nn.functional
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(i, w, tg.tensor(OFFSETS), per_sample_weights=tg.ones(9))
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        F.embedding_bag(i, w)
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(i.reshape(3, 3), w, tg.tensor([0]))
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        F.embedding_bag(i, w, tg.tensor([1, 3]))
    with pytest.raises(ValueError, match="mode has to be one of"):
        F.embedding_bag(i, w, tg.tensor([0]), mode="median")


def test_compiled_equals_eager():
    w = tg.tensor(W, requires_grad=True)
    offs = tg.tensor(OFFSETS)

    def step(idx, psw):
        return tg.nn.functional.embedding_bag(idx, w, offs, mode="sum",
                                              per_sample_weights=psw).sin().sum()
    psw = tg.tensor(rng.standard_normal(9))
    eager = step(tg.tensor(INPUT), psw)
    compiled = tg.compile(step)(tg.tensor(INPUT), psw)
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-12)


def test_module_matches_pytorch_signature_init_and_state_dict():
    ref = T.nn.EmbeddingBag(10, 4, mode="max", padding_idx=3)
    bag = tg.nn.EmbeddingBag(10, 4, mode="max", padding_idx=3)
    assert repr(bag) == repr(ref) == "EmbeddingBag(10, 4, mode='max', padding_idx=3)"
    assert list(bag.state_dict()) == list(ref.state_dict()) == ["weight"]
    assert np.all(bag.weight.detach().numpy()[3] == 0)
    tg.manual_seed(0)
    big = tg.nn.EmbeddingBag(1000, 50).weight.detach().numpy()   # N(0, 1)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    bag.load_state_dict({"weight": tg.tensor(ref.weight.detach().numpy())})
    idx, offs = np.array([1, 3, 3, 7]), np.array([0, 1])
    np.testing.assert_allclose(bag(tg.tensor(idx), tg.tensor(offs)).detach().numpy(),
                               ref(T.tensor(idx), T.tensor(offs)).detach().numpy(),
                               rtol=1e-6)
    frozen = tg.nn.EmbeddingBag.from_pretrained(tg.tensor(W), mode="sum")
    assert not frozen.weight.requires_grad and frozen.mode == "sum"
