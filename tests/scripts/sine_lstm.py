"""Predict the next value of a sine wave with nn.LSTM + nn.Linear and Adam, in the style
of the time-sequence-prediction example (which uses LSTMCell and LBFGS; this one uses
the sequence layer, batch_first, and a gradient-clipped Adam). Then generate the
continuation of a wave autoregressively and compare it with the true sine."""
import math

import numpy as np

import tracegrad as torch
import tracegrad.nn as nn

np.random.seed(2)
torch.manual_seed(0)
T, N, L = 20, 16, 40
phase = np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
x = np.sin((np.arange(L + 1) + phase) / T).astype("float32")
inputs = torch.from_numpy(x[:, :-1]).unsqueeze(-1)
target = torch.from_numpy(x[:, 1:]).unsqueeze(-1)


class Sequence(nn.Module):
    def __init__(self, hidden=24):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        out, (h, c) = self.lstm(input)
        outputs = [self.linear(out)]
        last = outputs[0][:, -1:]
        for _ in range(future):  # feed each prediction back in
            out, (h, c) = self.lstm(last, (h, c))
            last = self.linear(out)
            outputs.append(last)
        return torch.cat(outputs, dim=1)


seq = Sequence()
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(seq.parameters(), lr=0.02)
losses = []
for i in range(150):
    optimizer.zero_grad()
    out = seq(inputs)
    loss = criterion(out, target)
    loss.backward()
    nn.utils.clip_grad_norm_(seq.parameters(), 1.0)
    optimizer.step()
    losses.append(loss.item())
with torch.no_grad():
    future = 10
    start = 0
    probe = torch.from_numpy(x[:1, :-1]).unsqueeze(-1)
    pred = seq(probe, future=future)[0, -future:, 0]
    truth = np.sin((np.arange(L + 1, L + 1 + future) + phase[0, 0]) / T)
    gen_err = float(np.abs(pred.numpy() - truth).max())
print(f"loss {losses[0]:.4f} -> {losses[-1]:.5f}; generated {future} steps, max error "
      f"{gen_err:.4f} (period {2 * math.pi * T:.1f} steps)")
