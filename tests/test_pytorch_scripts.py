"""Small PyTorch-style scripts (tests/scripts/) run unmodified with ``import tracegrad as
torch``: tensor and autograd basics, polynomial fits, a dynamic net, the NLP tutorial's
bag-of-words / n-gram / LSTM tagger / BiLSTM-CRF, a sine-wave LSTM and word-level LSTM and
Transformer language models. Each test checks what the script learned or printed against numbers
recorded from PyTorch 2.13 running the same script (``import torch``).

``TG_SCRIPTS_WITH=torch python -m pytest tests/test_pytorch_scripts.py`` runs the same
scripts and assertions against an installed PyTorch, which is how the numbers were made.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"
LIBRARY = os.environ.get("TG_SCRIPTS_WITH", "tracegrad")


def run_script(name: str) -> tuple[dict, str]:
    """Run tests/scripts/<name>.py as __main__; return its globals and what it printed."""
    path = SCRIPTS / f"{name}.py"
    source = path.read_text()
    if LIBRARY == "torch":
        pytest.importorskip("torch")
        source = re.sub(r"^(import|from) tracegrad", r"\1 torch", source, flags=re.M)
    namespace = {"__name__": "__main__", "__file__": str(path)}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, str(path), "exec"), namespace)
    return namespace, out.getvalue()


def test_tensor_and_autograd_basics_print_what_pytorch_prints():
    _, printed = run_script("tensor_autograd_basics")
    expected = (SCRIPTS / "tensor_autograd_basics.expected.txt").read_text()
    # dtype and Size reprs name the library; everything else is character for character
    assert printed.replace("tracegrad.", "torch.") == expected


def test_polynomial_fit_by_hand_autograd_and_nn():
    g, _ = run_script("polynomial_fit")
    torch_500_steps = [0.019736, 0.488786, -0.003405, -0.040992]
    assert g["by_hand"] == pytest.approx(torch_500_steps, abs=2e-6)
    assert g["with_autograd"] == pytest.approx(torch_500_steps, abs=2e-6)
    # RMSprop converges to the least-squares cubic; PyTorch: loss 8.9078. At lr 1e-3 its
    # normalised steps end in an oscillation of about lr around the optimum, whose phase
    # after 2000 steps follows the last bits of the sums (the BLAS kernel, CORETYPE)
    assert g["fitted"] == pytest.approx([0.0, 0.85724, 0.0, -0.09283], abs=1e-3)
    assert 8.85 < g["loss"].item() < 8.95


def test_dynamic_net_depth_varies_per_step():
    g, _ = run_script("dynamic_net")
    assert g["losses"][0] == pytest.approx(11855.285, abs=0.02)
    assert g["losses"][-1] == pytest.approx(328.501, abs=0.02)
    params = [p.item() for p in g["model"].parameters()]
    assert params == pytest.approx([0.02465, 0.29399, 0.000332, -0.011332, -0.000837],
                                   abs=3e-6)


def test_bag_of_words_and_ngram_models_learn():
    g, _ = run_script("nlp_bow_ngram")
    assert g["bow_predictions"] == [0, 1]  # SPANISH, ENGLISH
    # the trained weights of "creo" point to SPANISH (label 0)
    assert g["creo"][0].item() > g["creo"][1].item()
    losses = g["losses"]
    assert 150 < losses[0] < 200  # 46 n-grams, ~log(vocabulary) each
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[0] - losses[-1] > 4  # PyTorch: 175.35 -> 165.89


def test_lstm_tagger_learns_the_tags():
    g, _ = run_script("lstm_tagger")
    assert g["predicted"] == g["gold"]
    assert g["final_loss"] < 0.15  # PyTorch: 0.0404


def test_bilstm_crf_viterbi_decodes_the_gold_tags():
    g, printed = run_script("bilstm_crf")
    assert g["decoded"] == g["gold"]
    assert g["final_nll"] < 1.5  # PyTorch: 1.16 (seed 1)


def test_sine_wave_lstm_predicts_and_generates():
    g, _ = run_script("sine_lstm")
    assert g["losses"][0] > 0.1
    assert g["losses"][-1] < 0.004  # PyTorch: 0.00073
    assert g["gen_err"] < 0.3  # PyTorch: 0.16 after 10 generated steps


def test_word_language_model_perplexity_falls():
    g, printed = run_script("word_language_model")
    ppl = g["val_ppls"]
    assert ppl[0] > 5  # 15 words: uniform guessing would be 15
    assert g["test_ppl"] < 2.2  # PyTorch: 1.33
    assert g["test_ppl"] == pytest.approx(min(ppl), rel=1e-5)  # the saved best reloads
    assert "| end of training |" in printed


def test_transformer_language_model_subclassing_nn_transformer_learns():
    g, _ = run_script("transformer_language_model")
    losses = g["epoch_losses"]
    assert losses[0] > 1.5  # 10 words
    assert losses[-1] < 0.5  # PyTorch: 2.131 -> 0.207
    assert g["next_word"] in ("mat", "log")  # "the cat sat on the" -> a place
    assert isinstance(g["model"], g["nn"].Transformer) and g["model"].model_type == "Transformer"
