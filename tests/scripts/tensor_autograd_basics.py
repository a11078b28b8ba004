"""Tensors and autograd, in the style of the "Tensors" and "Autograd" tutorials.
Every value printed is deterministic (no random numbers)."""
import numpy as np

import tracegrad as torch

data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
print("x_data:", x_data.tolist(), x_data.dtype)
x_np = torch.from_numpy(np.array(data))
print("from_numpy:", x_np.tolist())
x_ones = torch.ones_like(x_data)
print("ones_like:", x_ones.tolist())
shape = (2, 3,)
print("zeros:", torch.zeros(shape).tolist(), "ones:", torch.ones(shape).shape)
tensor = torch.arange(12, dtype=torch.float32).reshape(3, 4)
print("shape/dtype/device:", tuple(tensor.shape), tensor.dtype, tensor.device)
print("first row:", tensor[0].tolist())
print("first column:", tensor[:, 0].tolist())
print("last column:", tensor[..., -1].tolist())
tensor[:, 1] = 0
print("column 1 zeroed:", tensor.tolist())
t1 = torch.cat([tensor, tensor, tensor], dim=1)
print("cat:", tuple(t1.shape), t1.sum().item())
y1 = tensor @ tensor.T
y2 = tensor.matmul(tensor.T)
y3 = torch.rand_like(y1)
y3.copy_(torch.matmul(tensor, tensor.T))  # PyTorch's tutorial: torch.matmul(..., out=y3)
print("matmul:", y1.tolist(), torch.equal(y1, y2), torch.equal(y1, y3))
z1 = tensor * tensor
z2 = tensor.mul(tensor)
print("mul:", z1.sum().item(), torch.equal(z1, z2))
agg = tensor.sum()
print("item:", agg.item(), type(agg.item()).__name__)
tensor.add_(5)
print("add_:", tensor[0].tolist())
n = tensor.numpy()
tensor.add_(1)
print("numpy shares memory:", n[0].tolist())
print("stack:", torch.stack([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])]).tolist())
print("view:", torch.arange(6).view(2, 3).t().contiguous().view(-1).tolist())
print("max:", torch.tensor([[1.0, 5.0], [7.0, 2.0]]).max(dim=1).values.tolist(),
      torch.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(1).tolist())
print("softmax:", [round(v, 6) for v in torch.softmax(torch.tensor([1.0, 2.0, 3.0]), 0).tolist()])

# autograd: a one-layer network's loss and its gradients
x = torch.ones(5)
y = torch.zeros(3)
w = torch.arange(15, dtype=torch.float32).reshape(5, 3).div(10).requires_grad_()
b = torch.tensor([0.1, -0.2, 0.3], requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
print("grad_fn set:", z.grad_fn is not None, loss.grad_fn is not None)
loss.backward()
print("loss:", round(loss.item(), 6))
print("w.grad:", [[round(v, 6) for v in row] for row in w.grad.tolist()])
print("b.grad:", [round(v, 6) for v in b.grad.tolist()])
with torch.no_grad():
    z = torch.matmul(x, w) + b
print("no_grad requires_grad:", z.requires_grad)
print("detach requires_grad:", (torch.matmul(x, w) + b).detach().requires_grad)

# a vector-Jacobian product and gradient accumulation
inp = torch.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print("first call:", inp.grad.tolist())
out.backward(torch.ones_like(out), retain_graph=True)
print("second call:", inp.grad.tolist())
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print("after zero_:", inp.grad.tolist())

# derivative of a scalar function, checked at a few points
a = torch.linspace(0.0, 2.0, 5, requires_grad=True)
f = (torch.sin(a) * a).sum()
(ga,) = torch.autograd.grad(f, a)
print("d/da a*sin(a):", [round(v, 6) for v in ga.tolist()])
