"""DataParallel (a single-device wrapper) and SyncBatchNorm (batch norm without a process
group) against PyTorch 2.13: reprs, state_dict keys, checkpoints moving both ways,
training/eval outputs, gradients and running statistics; convert_sync_batchnorm."""
import numpy as np
import pytest

import tracegrad as tg
import tracegrad.nn as nn

T = pytest.importorskip("torch")
rng = np.random.default_rng(0)


def _copy(src, dst, to):
    dst.load_state_dict({k: to(v.detach().numpy()) for k, v in src.state_dict().items()})


def test_data_parallel_calls_the_module_and_keeps_checkpoint_keys():
    ref = T.nn.DataParallel(T.nn.Sequential(T.nn.Linear(3, 4), T.nn.Tanh())).double()
    net = nn.DataParallel(nn.Sequential(nn.Linear(3, 4), nn.Tanh())).double()
    assert repr(net) == repr(ref)
    assert list(net.state_dict()) == list(ref.state_dict()) == ["module.0.weight",
                                                                "module.0.bias"]
    _copy(ref, net, tg.tensor)
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(net(tg.tensor(x)).detach().numpy(),
                               ref(T.tensor(x)).detach().numpy(), rtol=1e-12)
    assert net.device_ids == ref.device_ids == []
    assert tg.nn.parallel.DataParallel is nn.DataParallel
    with pytest.raises(TypeError, match="DataParallel: expected an nn.Module"):
        nn.DataParallel(lambda x: x)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 2, 3)])
def test_sync_batch_norm_is_batch_norm_without_a_group(shape):
    ref = T.nn.SyncBatchNorm(3, momentum=0.3).double()
    mine = nn.SyncBatchNorm(3, momentum=0.3, dtype=tg.float64)
    assert repr(mine) == repr(ref)
    assert list(mine.state_dict()) == list(ref.state_dict())
    with T.no_grad():
        ref.weight.copy_(T.tensor(rng.standard_normal(3)))
        ref.bias.copy_(T.tensor(rng.standard_normal(3)))
    _copy(ref, mine, tg.tensor)
    x = rng.standard_normal(shape)
    tx, gx = T.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    a, b = ref(tx), mine(gx)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    u = rng.standard_normal(shape)
    a.backward(T.tensor(u))
    b.backward(tg.tensor(u))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(mine.state_dict()[k].numpy(), v.numpy(), rtol=1e-12)
    ref.eval()
    mine.eval()
    np.testing.assert_allclose(mine(gx).detach().numpy(), ref(tx).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        mine(tg.zeros(3))


def test_convert_sync_batchnorm_shares_parameters_recursively():
    ref = T.nn.Sequential(T.nn.Conv2d(2, 3, 1), T.nn.BatchNorm2d(3),
                          T.nn.Sequential(T.nn.BatchNorm2d(3, affine=False)))
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3),
                        nn.Sequential(nn.BatchNorm2d(3, affine=False)))
    net[1].eval()
    conv_ref = T.nn.SyncBatchNorm.convert_sync_batchnorm(ref)
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert repr(conv) == repr(conv_ref)
    assert type(conv[1]) is nn.SyncBatchNorm and conv[1].weight is net[1].weight
    assert conv[1].running_mean is net[1].running_mean and not conv[1].training
    assert type(conv[2][0]) is nn.SyncBatchNorm and conv[2][0].weight is None
    assert list(conv.state_dict()) == list(conv_ref.state_dict())
