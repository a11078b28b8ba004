"""Eager speed on tutorial-style scripts (issue 12), side by side with PyTorch eager:
a word-level LSTM language-model epoch on a small text, a BiLSTM-CRF epoch (the NLP
tutorial's loop-heavy forward algorithm and Viterbi decode) and a dynamic-net step (the
depth changes per step). Most users never call ``compile``: these rows have no compiled
arm. Each model is written once against a library module (``tracegrad`` or ``torch``),
so both arms run the same code on the same initial weights."""
from __future__ import annotations

import random
import types

import numpy as np

import tracegrad

from .harness import Config, Row, measure
from .training import load_state, state_numpy

LM_NAME = "lstm_lm"
CRF_NAME = "bilstm_crf"
DYN_NAME = "dynamic_net"
EAGER_ONLY = "n/a (eager rows)"

TEXT = """the quick brown fox jumps over the lazy dog . a lazy dog sleeps in the sun .
the brown dog chases the quick fox . foxes and dogs run in the field all day .
a small bird sings in the tall tree . the bird flies over the field and the fox .
the sun sets and the dog sleeps . the fox runs home over the hill . a bird sleeps ."""


def _arms(cfg: Config, make) -> dict:
    """``make(lib)`` -> a zero-argument callable running one unit of work with ``lib``."""
    arms = {"eager": make(tracegrad)}
    if "torch" in cfg.peers:
        arms["torch"] = make(cfg.peers["torch"])
    return arms


# ---- word-level LSTM language model ----------------------------------------------------
def _lm_model(lib, ntok: int, emb: int, hid: int):
    nn = lib.nn

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(ntok, emb)
            self.rnn = nn.LSTM(emb, hid, 1)
            self.decoder = nn.Linear(hid, ntok)

        def forward(self, x, hidden):
            out, hidden = self.rnn(self.encoder(x), hidden)
            return nn.functional.log_softmax(self.decoder(out).view(-1, ntok), dim=1), hidden
    return RNNModel()


def run_lm(cfg: Config) -> list[Row]:
    emb, hid, batch, bptt = cfg.pick((64, 128, 16, 32), (32, 64, 8, 16), tiny=(8, 16, 4, 8))
    words = (TEXT.split() * cfg.pick(40, 10, tiny=2))
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.array([vocab[w] for w in words], np.int64)
    n = len(ids) // batch
    data = ids[:n * batch].reshape(batch, n).T.copy()  # batchify: (n, batch)
    size = f"{len(ids)} words, vocab {len(vocab)}, emb {emb}, hid {hid}, B={batch} bptt={bptt}"
    row = Row(LM_NAME, "LSTM language model epoch", size, "ms")
    tracegrad.manual_seed(0)
    init = state_numpy(_lm_model(tracegrad, len(vocab), emb, hid))

    def make(lib):
        model = _lm_model(lib, len(vocab), emb, hid)
        load_state(model, init, None if lib is tracegrad else lib)
        source = lib.from_numpy(data)
        crit = lib.nn.NLLLoss()

        def epoch():
            hidden = (lib.zeros(1, batch, hid), lib.zeros(1, batch, hid))
            total = 0.0
            for i in range(0, len(source) - 1, bptt):
                seq = min(bptt, len(source) - 1 - i)
                x, y = source[i:i + seq], source[i + 1:i + 1 + seq].reshape(-1)
                hidden = tuple(h.detach() for h in hidden)
                model.zero_grad()
                out, hidden = model(x, hidden)
                loss = crit(out, y)
                loss.backward()
                lib.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
                with lib.no_grad():
                    for p in model.parameters():
                        p.add_(p.grad, alpha=-1.0)
                total += loss.item()
            return total
        epoch.model = model
        return epoch

    arms = _arms(cfg, make)
    row.notes["compiled"] = EAGER_ONLY
    row.times = measure(arms, cfg)
    row.note = _finite_note(arms)
    return [row]


# ---- BiLSTM-CRF ------------------------------------------------------------------------
CRF_DATA = [("the wall street journal reported today that apple corporation made money".split(),
             "B I I I O O O B I O O".split()),
            ("georgia tech is a university in georgia".split(), "B I O O O O B".split())]
CRF_TAGS = {"B": 0, "I": 1, "O": 2, "<START>": 3, "<STOP>": 4}


def _crf_model(lib, vocab: int, emb: int, hid: int):
    nn = lib.nn
    start, stop, ntags = CRF_TAGS["<START>"], CRF_TAGS["<STOP>"], len(CRF_TAGS)

    def log_sum_exp(vec):
        max_score = vec[0, int(lib.argmax(vec, 1).item())]
        return max_score + lib.log(lib.sum(lib.exp(vec - max_score.view(1, -1).expand(1, ntags))))

    class BiLSTM_CRF(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeds = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hid // 2, bidirectional=True)
            self.hidden2tag = nn.Linear(hid, ntags)
            self.transitions = nn.Parameter(lib.randn(ntags, ntags))

        def features(self, sentence):
            hidden = (lib.zeros(2, 1, hid // 2), lib.zeros(2, 1, hid // 2))
            out, _ = self.lstm(self.word_embeds(sentence).view(len(sentence), 1, -1), hidden)
            return self.hidden2tag(out.view(len(sentence), hid))

        def forward_alg(self, feats):
            forward_var = lib.full((1, ntags), -10000.0)
            forward_var[0][start] = 0.0
            for feat in feats:
                alphas = [log_sum_exp(forward_var + self.transitions[t].view(1, -1)
                                      + feat[t].view(1, -1).expand(1, ntags)).view(1)
                          for t in range(ntags)]
                forward_var = lib.cat(alphas).view(1, -1)
            return log_sum_exp(forward_var + self.transitions[stop])

        def score(self, feats, tags):
            s = lib.zeros(1)
            tags = lib.cat([lib.tensor([start], dtype=lib.long), tags])
            for i, feat in enumerate(feats):
                s = s + self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
            return s + self.transitions[stop, tags[-1]]

        def neg_log_likelihood(self, sentence, tags):
            feats = self.features(sentence)
            return self.forward_alg(feats) - self.score(feats, tags)
    return BiLSTM_CRF()


def run_crf(cfg: Config) -> list[Row]:
    emb, hid = cfg.pick((5, 4), (5, 4), tiny=(5, 4))
    words = {w: i for i, w in enumerate(dict.fromkeys(w for s, _ in CRF_DATA for w in s))}
    size = f"2 sentences (11, 7 words), {len(CRF_TAGS)} tags, emb {emb}, hid {hid}"
    row = Row(CRF_NAME, "BiLSTM-CRF epoch", size, "ms")
    tracegrad.manual_seed(0)
    init = state_numpy(_crf_model(tracegrad, len(words), emb, hid))

    def make(lib):
        model = _crf_model(lib, len(words), emb, hid)
        load_state(model, init, None if lib is tracegrad else lib)
        opt = lib.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4)
        data = [(lib.tensor([words[w] for w in s], dtype=lib.long),
                 lib.tensor([CRF_TAGS[t] for t in tags], dtype=lib.long)) for s, tags in CRF_DATA]

        def epoch():
            total = 0.0
            for sentence, tags in data:
                model.zero_grad()
                loss = model.neg_log_likelihood(sentence, tags)
                loss.backward()
                opt.step()
                total += loss.item()
            return total
        epoch.model = model
        return epoch

    arms = _arms(cfg, make)
    row.notes["compiled"] = EAGER_ONLY
    row.times = measure(arms, cfg)
    row.note = _finite_note(arms)
    return [row]


# ---- dynamic net -----------------------------------------------------------------------
def _dyn_model(lib):
    class DynamicNet(lib.nn.Module):
        def __init__(self):
            super().__init__()
            for name, v in zip("abcde", (0.1, -0.2, 0.3, -0.1, 0.0)):
                setattr(self, name, lib.nn.Parameter(lib.tensor(v)))

        def forward(self, x, depth):
            y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
            for exp in range(4, depth):
                y = y + self.e * x ** exp
            return y
    return DynamicNet()


def run_dyn(cfg: Config) -> list[Row]:
    points = cfg.pick(2000, 2000, tiny=200)
    size = f"{points} points, depth 4-5 per step"
    row = Row(DYN_NAME, "dynamic net step", size, "us")

    def make(lib):
        model = _dyn_model(lib)
        x = lib.linspace(-np.pi, np.pi, points)
        y = lib.sin(x)
        crit = lib.nn.MSELoss(reduction="sum")
        opt = lib.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
        rng = random.Random(0)

        def step():
            loss = crit(model(x, rng.randint(4, 6)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()
        step.model = model
        return step

    arms = _arms(cfg, make)
    row.notes["compiled"] = EAGER_ONLY
    row.times = measure(arms, cfg)
    return [row]


def _finite_note(arms: dict) -> str:
    """The arms train for as many units as their timing takes, so their weights differ;
    this only flags an arm whose training diverged."""
    for name, fn in arms.items():
        for p in fn.model.parameters():
            if not np.isfinite(p.detach().numpy()).all():
                return f"{name}: non-finite parameters"
    return ""


LMWorkload = types.SimpleNamespace(__doc__="Word-level LSTM LM epoch, eager vs torch.",
                                   run=run_lm)
CRFWorkload = types.SimpleNamespace(__doc__="BiLSTM-CRF epoch, eager vs torch.", run=run_crf)
DynWorkload = types.SimpleNamespace(__doc__="Dynamic-depth net step, eager vs torch.",
                                    run=run_dyn)
