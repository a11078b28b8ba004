"""Fit y = sin(x) on [-pi, pi] with a cubic, three ways, as the "Learning PyTorch with
Examples" tutorial does: gradients by hand, autograd, and nn + optim. The weights start
from fixed values so every printed number is deterministic."""
import math

import tracegrad as torch

dtype = torch.float32
x = torch.linspace(-math.pi, math.pi, 2000, dtype=dtype)
y = torch.sin(x)

# 1. tensors, gradients written by hand
a, b, c, d = (torch.tensor(v, dtype=dtype) for v in (0.1, -0.2, 0.3, -0.1))
learning_rate = 1e-6
for t in range(500):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum().item()
    grad_y_pred = 2.0 * (y_pred - y)
    a -= learning_rate * grad_y_pred.sum()
    b -= learning_rate * (grad_y_pred * x).sum()
    c -= learning_rate * (grad_y_pred * x ** 2).sum()
    d -= learning_rate * (grad_y_pred * x ** 3).sum()
by_hand = [a.item(), b.item(), c.item(), d.item()]
print(f"by hand: loss {loss:.3f} y = {a.item():.5f} + {b.item():.5f} x + {c.item():.5f} x^2 "
      f"+ {d.item():.5f} x^3")

# 2. the same with autograd
a, b, c, d = (torch.tensor(v, dtype=dtype, requires_grad=True) for v in (0.1, -0.2, 0.3, -0.1))
for t in range(500):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (a, b, c, d):
            p -= learning_rate * p.grad
            p.grad = None
with_autograd = [a.item(), b.item(), c.item(), d.item()]
print(f"autograd: loss {loss.item():.3f} y = {a.item():.5f} + {b.item():.5f} x + "
      f"{c.item():.5f} x^2 + {d.item():.5f} x^3")

# 3. nn.Sequential + optim.RMSprop, to convergence
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
with torch.no_grad():
    model[0].weight.copy_(torch.tensor([[-0.2, 0.3, -0.1]]))
    model[0].bias.fill_(0.1)
loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
for t in range(2000):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
linear_layer = model[0]
w = linear_layer.weight[:, 0].item(), linear_layer.weight[:, 1].item(), \
    linear_layer.weight[:, 2].item()
fitted = [linear_layer.bias.item(), *w]
print(f"nn+RMSprop: loss {loss.item():.2f} y = {linear_layer.bias.item():.3f} + {w[0]:.3f} x "
      f"+ {w[1]:.3f} x^2 + {w[2]:.3f} x^3")
