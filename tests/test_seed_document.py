"""The PyTorch introduction the project was asked to run (shared/seed/000_ceb9c4a4f9e1dd23.txt),
adapted only as needed for a CPU: ``import tracegrad as torch`` and the ``.cuda()`` lines
skipped. The nn / optim / DataLoader parts skip until those packages exist, and turn on
by themselves once they do. The original's ``dytpe`` typo is spelled ``dtype``; training
loops run ``STEPS`` iterations instead of 500 (and the DataLoader part on 640 samples for
2 epochs instead of 64000 for 500) to keep the suite fast on 2 cores."""
from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.autograd import Variable

STEPS = 100


def _need(module: str, *names: str):
    """Skip unless ``module`` imports and has every attribute in ``names``."""
    mod = pytest.importorskip(module)
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        pytest.skip(f"{module} has no {', '.join(missing)} yet")
    return mod


def test_tensors_section():
    numpy_array = np.random.randn(10, 10)

    # convert numpy array to pytorch tensor
    pytorch_tensor = torch.from_numpy(numpy_array)
    # or
    pytorch_tensor = torch.Tensor(numpy_array)

    # define pytorch tensor
    dtype = torch.FloatTensor
    cpu_tensor = torch.randn(10, 20).type(dtype)
    # or, FloatTensor by default
    cpu_tensor = torch.randn(10, 20)

    # gpu_tensor = cpu_tensor.cuda()  (skipped: no GPU)
    gpu_tensor = cpu_tensor
    # back to cpu tensor
    cpu_tensor = gpu_tensor.cpu()

    assert cpu_tensor.size() == torch.Size([10, 20])
    assert pytorch_tensor.dtype == torch.float32 and pytorch_tensor.shape == (10, 10)
    assert np.allclose(pytorch_tensor.numpy(), numpy_array.astype(np.float32))


def test_variables_section():
    x = Variable(torch.randn(5, 5))
    y = Variable(torch.randn(5, 5))
    z = Variable(torch.randn(5, 5), requires_grad=True)

    a = x + y  # won't require gradient
    b = x + z  # requires gradient
    assert not a.requires_grad and b.requires_grad

    x = Variable(torch.randn(5, 5), volatile=True)
    assert not (x + z).requires_grad


def test_two_layer_network_with_variables_and_autograd(capsys):
    N, D_in, H, D_out = 64, 1000, 100, 10
    torch.manual_seed(0)

    dtype = torch.FloatTensor

    # Create random Tensors to hold input and outputs, and wrap them in Variables.
    x = Variable(torch.randn(N, D_in).type(dtype), requires_grad=False)
    y = Variable(torch.randn(N, D_out).type(dtype), requires_grad=False)

    # Create random Tensors for weights, and wrap them in Variables.
    w1 = Variable(torch.randn(D_in, H).type(dtype), requires_grad=True)
    w2 = Variable(torch.randn(H, D_out).type(dtype), requires_grad=True)

    losses = []
    learning_rate = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # loss.data[0] on a 0-d loss
        for t in range(STEPS):
            y_pred = x.mm(w1).clamp(min=0).mm(w2)

            loss = (y_pred - y).pow(2).sum()
            print(t, loss.data[0])
            losses.append(loss.item())

            loss.backward()

            w1.data -= learning_rate * w1.grad.data
            w2.data -= learning_rate * w2.grad.data

            w1.grad.data.zero_()
            w2.grad.data.zero_()

    out = capsys.readouterr().out.splitlines()
    assert len(out) == STEPS and out[0].startswith("0 ") and "tensor(" in out[0]
    assert losses[-1] < 0.5 * losses[0]  # the network learns
    assert np.all(np.isfinite(losses))


def _two_layer_nn_class():
    nn = _need("tracegrad.nn", "Module", "Linear", "ReLU")

    class TwoLayerNN(nn.Module):
        def __init__(self, D_in, H, D_out):
            super(TwoLayerNN, self).__init__()
            self.linear1 = nn.Linear(D_in, H)
            self.relu = nn.ReLU()
            self.linear2 = nn.Linear(H, D_out)

        def forward(self, x):
            h_in = self.linear1(x)
            h_relu = self.relu(h_in)
            y_pred = self.linear2(h_relu)
            return y_pred

    return TwoLayerNN


def test_nn_module_section():
    _need("tracegrad.nn", "Sequential", "Linear", "ReLU", "MSELoss")
    import tracegrad.nn  # noqa: F401  (torch.nn as the document uses it)
    N, D_in, H, D_out = 64, 1000, 100, 10
    model = torch.nn.Sequential(
        torch.nn.Linear(D_in, H),
        torch.nn.ReLU(),
        torch.nn.Linear(H, D_out),
    )
    loss_fn = torch.nn.MSELoss(size_average=False)
    x, y = torch.randn(N, D_in), torch.randn(N, D_out)
    loss = loss_fn(model(x), y)
    assert loss.shape == () and loss.requires_grad
    ref = ((model(x) - y) ** 2).sum()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)

    TwoLayerNN = _two_layer_nn_class()
    assert TwoLayerNN(D_in, H, D_out)(x).shape == (N, D_out)


def test_optimization_section():
    _need("tracegrad.optim", "SGD")
    _need("tracegrad.nn", "MSELoss")
    import tracegrad.nn
    import tracegrad.optim  # noqa: F401
    TwoLayerNN = _two_layer_nn_class()
    torch.manual_seed(0)

    N, D_in, H, D_out = 64, 1000, 100, 10

    x = Variable(torch.randn(N, D_in))  # .cuda() skipped
    y = Variable(torch.randn(N, D_out), requires_grad=False)  # .cuda() skipped

    model = TwoLayerNN(D_in, H, D_out)
    # model.cuda()  (skipped)

    criterion = torch.nn.MSELoss(size_average=False)

    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    first = None
    for t in range(STEPS):
        y_pred = model(x)
        loss = criterion(y_pred, y)
        optimizer.zero_grad()
        loss.backward()
        first = loss.item() if first is None else first

        # update the weights (the document steps once after the loop; stepping inside it,
        # as the DataLoader example does, is what training needs)
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_dataloader_section():
    data = _need("tracegrad.utils.data", "TensorDataset", "DataLoader")
    _need("tracegrad.optim", "SGD")
    _need("tracegrad.nn", "MSELoss")
    import tracegrad.nn
    import tracegrad.optim
    import tracegrad.utils.data  # noqa: F401
    assert importlib.import_module("tracegrad.utils.data") is data
    TwoLayerNN = _two_layer_nn_class()
    torch.manual_seed(0)

    # Scaled down from 64000 samples and 500 epochs to keep the test fast.
    N, D_in, H, D_out = 640, 1000, 100, 10
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((N, D_in)).astype(np.float32)
    y_train = rng.standard_normal((N, D_out)).astype(np.float32)

    x = torch.from_numpy(x_train)
    y = torch.from_numpy(y_train)

    # build dataloader
    training_dataset = torch.utils.data.TensorDataset(x, y)
    data_loader = torch.utils.data.DataLoader(training_dataset, batch_size=64)

    # calling model
    model = TwoLayerNN(D_in, H, D_out)
    # model.cuda()  (skipped)
    criterion = torch.nn.MSELoss(size_average=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    epoch_losses = []
    for t in range(2):
        total = 0.0
        for i, data in enumerate(data_loader):
            # Get each batch
            inputs, labels = data

            inputs, labels = Variable(inputs), Variable(labels)
            y_pred = model(inputs)

            loss = criterion(y_pred, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        assert i == N // 64 - 1
        epoch_losses.append(total)
    assert epoch_losses[-1] < epoch_losses[0]
