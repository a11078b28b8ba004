"""Train an MLP and a small CNN on scikit-learn's 8x8 handwritten digits.

    pip install 'tracegrad[examples]'    # scikit-learn provides the data (no download)
    python examples/digits.py [--epochs-mlp N] [--epochs-cnn N] [--seed S]

Uses the PyTorch-style API throughout: nn.Module, DataLoader/TensorDataset, an optimizer.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# NOTE: these matrices are small; a multi-threaded BLAS only spins on a busy 2-core
# machine (measured here: a 512x144 @ 144x32 matmul took 5 ms with 2 OpenBLAS threads
# under load, 0.09 ms with one). Set before NumPy loads; the caller's setting wins.
# tracegrad's thread policy (one BLAS thread while a compiled program runs) does not
# cover this script, which trains eagerly: rechecked 2026-12-02 at load 7-8, `--epochs-mlp
# 4 --epochs-cnn 2` took 9.1-10.6 s wall with this line and 28-33 s with 2 BLAS threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tracegrad as torch  # noqa: E402
import tracegrad.nn as nn  # noqa: E402
import tracegrad.nn.functional as F  # noqa: E402
from tracegrad.utils.data import DataLoader, TensorDataset  # noqa: E402


def load_digits_split(seed: int):
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        sys.exit("This example needs scikit-learn: pip install 'tracegrad[examples]'")
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # (N, 8, 8) in [0, 1]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 16 x 4 x 4
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2))                                   # 32 x 2 x 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x.unsqueeze(1)))


def progress(epoch: int, epochs: int, step: int, steps: int, loss: float, width: int = 24) -> None:
    done = int(width * step / steps)
    bar = "#" * done + "." * (width - done)
    sys.stdout.write(f"\r  epoch {epoch:2d}/{epochs} [{bar}] loss {loss:.4f}")
    sys.stdout.flush()


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    model.train()
    return float((pred == y).float().mean())


def train(name: str, model: nn.Module, data, epochs: int, lr: float) -> tuple[float, float]:
    x_train, x_test, y_train, y_test = data
    loader = DataLoader(TensorDataset(torch.tensor(x_train), torch.tensor(y_train)),
                        batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) \
        if hasattr(torch.optim, "lr_scheduler") else None
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {n_params} parameters, {len(loader)} batches per epoch")
    start = time.perf_counter()
    xt, yt = torch.tensor(x_test), torch.tensor(y_test)
    for epoch in range(1, epochs + 1):
        running = 0.0
        for step, (xb, yb) in enumerate(loader, 1):
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running = 0.9 * running + 0.1 * loss.item() if step > 1 else loss.item()
            progress(epoch, epochs, step, len(loader), running)
        if sched is not None:
            sched.step()
        acc = evaluate(model, xt, yt)
        sys.stdout.write(f"  test acc {acc:.4f}\n")
    elapsed = time.perf_counter() - start
    acc = evaluate(model, xt, yt)
    print(f"{name}: test accuracy {acc * 100:.2f}% in {elapsed:.1f} s\n")
    return acc, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-mlp", type=int, default=30)
    parser.add_argument("--epochs-cnn", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    data = load_digits_split(args.seed)
    print(f"digits: {len(data[0])} train / {len(data[1])} test images of 8x8\n")
    mlp_acc, _ = train("MLP", MLP(), data, args.epochs_mlp, lr=3e-3)
    cnn_acc, _ = train("CNN", CNN(), data, args.epochs_cnn, lr=3e-3)
    print(f"MLP {mlp_acc * 100:.2f}%  CNN {cnn_acc * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
