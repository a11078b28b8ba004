"""An LSTM sentiment classifier on variable-length token sequences, without padding.

    python examples/sentiment_rnn.py [--epochs N] [--seed S]

The data is generated: a vocabulary of "positive", "negative" and neutral words; a
sentence is positive when it holds more positive than negative words. Each batch holds
sentences of one length and each forward pass builds a graph exactly that long (a
dynamic graph), so nothing is padded or masked.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matmuls: see examples/digits.py

import numpy as np  # noqa: E402

import tracegrad as torch  # noqa: E402
import tracegrad.nn as nn  # noqa: E402
import tracegrad.nn.functional as F  # noqa: E402

POSITIVE = ["good", "great", "fine", "superb", "lovely", "happy", "nice", "fun"]
NEGATIVE = ["bad", "awful", "poor", "boring", "sad", "ugly", "dull", "weak"]
NEUTRAL = ["the", "a", "movie", "plot", "actor", "was", "is", "and", "but", "very", "it",
           "scene", "story", "ending", "music", "film", "quite", "really", "some", "this"]
VOCAB = POSITIVE + NEGATIVE + NEUTRAL
POS_IDS = np.arange(len(POSITIVE))
NEG_IDS = np.arange(len(POSITIVE), len(POSITIVE) + len(NEGATIVE))
NEUTRAL_IDS = np.arange(len(POSITIVE) + len(NEGATIVE), len(VOCAB))


def make_batch(rng: np.random.Generator, length: int, batch: int):
    """``batch`` sentences of ``length`` tokens and their labels (no ties)."""
    tokens = np.empty((batch, length), dtype=np.int64)
    labels = np.empty(batch, dtype=np.int64)
    for i in range(batch):
        while True:
            kind = rng.random(length)
            n_pos = int((kind < 0.2).sum())
            n_neg = int(((kind >= 0.2) & (kind < 0.4)).sum())
            if n_pos != n_neg:
                break
        words = np.concatenate([rng.choice(POS_IDS, n_pos), rng.choice(NEG_IDS, n_neg),
                                rng.choice(NEUTRAL_IDS, length - n_pos - n_neg)])
        tokens[i] = rng.permutation(words)
        labels[i] = int(n_pos > n_neg)
    return torch.tensor(tokens), torch.tensor(labels)


def make_dataset(rng, n_batches: int, batch: int, min_len: int, max_len: int):
    return [make_batch(rng, int(rng.integers(min_len, max_len + 1)), batch)
            for _ in range(n_batches)]


class SentimentLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int = 16, hidden: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, tokens):
        out, (h, c) = self.lstm(self.embed(tokens))  # out: (B, L, H), one step per token
        return self.head(h[-1])


def graph_size(loss) -> int:
    """How many recorded operations the backward pass will walk from ``loss``."""
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(getattr(x, "grad_fn", None) for x in node.inputs)
    return len(seen)


def accuracy(model, data) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in data:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train = make_dataset(rng, 120, 32, 4, 30)
    test = make_dataset(rng, 20, 32, 4, 30)
    longer = make_dataset(rng, 10, 32, 40, 60)  # longer than anything seen in training
    lengths = [x.shape[1] for x, _ in train[:8]]
    print(f"{len(train)} training batches of 32 sentences; first batch lengths: {lengths}")
    x0, y0 = train[0]
    print("example:", " ".join(VOCAB[i] for i in x0[0].tolist()),
          "->", "positive" if y0[0].item() else "negative")

    model = SentimentLSTM(len(VOCAB))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    print(f"chance: 50%   before training: {accuracy(model, test) * 100:.1f}%")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train))
        total = 0.0
        for step, i in enumerate(order, 1):
            x, y = train[i]
            loss = F.cross_entropy(model(x), y)
            if epoch == 1 and step <= 3:
                # each batch's graph unrolls the LSTM for exactly its own length
                print(f"  batch {step}: length {x.shape[1]:2d} -> a graph of "
                      f"{graph_size(loss)} operations")
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item()
        print(f"epoch {epoch}: mean loss {total / len(train):.4f}  "
              f"test acc {accuracy(model, test) * 100:.1f}%  "
              f"({time.perf_counter() - start:.1f} s)")
    acc = accuracy(model, test)
    acc_long = accuracy(model, longer)
    print(f"test accuracy {acc * 100:.1f}% (lengths 4-30), {acc_long * 100:.1f}% on unseen "
          f"lengths 40-60; trained in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
