"""A word-level LSTM language model in the style of the word_language_model example:
a Corpus/Dictionary, batchify, get_batch with bptt, an RNNModel with tied weights,
hidden state carried across batches (repackage_hidden), clip_grad_norm_, a plain SGD
update written by hand, a learning-rate anneal, evaluation perplexity, and a
state_dict round trip through torch.save/torch.load."""
import io
import math
import time

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

TEXT = """the cat sat on the mat . the dog sat on the log . the cat saw the dog .
the dog saw the cat . a cat and a dog sat on a mat . the cat ate the fish .
the dog ate the bone . a dog saw a cat on the log . the cat sat on the log .
the dog sat on the mat . a cat ate a fish on the mat . the dog ate a bone on the log ."""


class Dictionary(object):
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus(object):
    def __init__(self, text):
        self.dictionary = Dictionary()
        lines = text.strip().split("\n")
        self.train = self.tokenize(lines * 3)
        self.valid = self.tokenize(lines[:2])

    def tokenize(self, lines):
        idss = []
        for line in lines:
            words = line.split() + ["<eos>"]
            idss.append(torch.tensor([self.dictionary.add_word(w) for w in words],
                                     dtype=torch.int64))
        return torch.cat(idss)


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super(RNNModel, self).__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


torch.manual_seed(1111)
corpus = Corpus(TEXT)
train_data = batchify(corpus.train, 4)
val_data = batchify(corpus.valid, 2)
ntokens = len(corpus.dictionary)
model = RNNModel("LSTM", ntokens, 24, 24, 1, dropout=0.0, tie_weights=True)
criterion = nn.NLLLoss()
bptt, lr, clip = 8, 5.0, 0.5


def evaluate(data_source):
    model.eval()
    total_loss = 0.
    hidden = model.init_hidden(data_source.size(1))
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train():
    model.train()
    total_loss = 0.
    hidden = model.init_hidden(train_data.size(1))
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i, bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
    return total_loss / (batch + 1)


val_ppls = []
best_val_loss = None
start = time.time()
for epoch in range(1, 16):
    train_loss = train()
    val_loss = evaluate(val_data)
    val_ppls.append(math.exp(val_loss))
    if not best_val_loss or val_loss < best_val_loss:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        best_val_loss = val_loss
    else:
        lr /= 4.0
    print(f"| epoch {epoch:3d} | train loss {train_loss:5.2f} | valid ppl {val_ppls[-1]:8.2f}")
buffer.seek(0)
model.load_state_dict(torch.load(buffer))
test_ppl = math.exp(evaluate(val_data))
print(f"| end of training | {time.time() - start:.1f}s | vocabulary {ntokens} | "
      f"best valid ppl {test_ppl:8.2f}")
