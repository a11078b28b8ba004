"""The Transformer path of the word_language_model example: a TransformerModel that
subclasses nn.Transformer (encoder only, as the example does), sinusoidal positional
encoding in a registered buffer, a causal source mask, trained with Adam on a tiny text
to predict the next word."""
import math

import tracegrad as torch
import tracegrad.nn as nn
import tracegrad.nn.functional as F

TEXT = ("the cat sat on the mat . the dog sat on the log . the cat saw the dog . "
        "the dog saw the cat . ") * 4


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__(d_model=ninp, nhead=nhead,
                                               dim_feedforward=nhid,
                                               num_encoder_layers=nlayers)
        self.model_type = "Transformer"
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                self.src_mask = self.generate_square_subsequent_mask(len(src))
        else:
            self.src_mask = None
        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


torch.manual_seed(0)
words = TEXT.split()
vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
data = torch.tensor([vocab[w] for w in words], dtype=torch.long)
bsz, bptt = 4, 8
nbatch = data.size(0) // bsz
source = data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()
model = TransformerModel(len(vocab), 16, 2, 32, 1, dropout=0.0)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.NLLLoss()
epoch_losses = []
for epoch in range(12):
    total = 0.0
    batches = 0
    for i in range(0, source.size(0) - 1, bptt):
        seq_len = min(bptt, len(source) - 1 - i)
        x, y = source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)
        optimizer.zero_grad()
        output = model(x)
        loss = criterion(output.view(-1, len(vocab)), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        total += loss.item()
        batches += 1
    epoch_losses.append(total / batches)
model.eval()
with torch.no_grad():
    probe = torch.tensor([vocab[w] for w in "the cat sat on the".split()]).unsqueeze(1)
    next_word = list(vocab)[model(probe)[-1, 0].argmax().item()]
print(f"loss {epoch_losses[0]:.3f} -> {epoch_losses[-1]:.3f}; after 'the cat sat on the': "
      f"{next_word!r}")
