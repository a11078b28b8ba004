"""nn.Transformer in two configurations beyond test_nn_transformer.py's (post-norm ReLU;
pre-norm GELU with batch_first, float64): outputs and input gradients against PyTorch's
(tests/fixtures/transformer_torch.npz, made by make_transformer_configs_fixture.py, weights
copied in through load_state_dict), plus causal-mask and padding properties."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracegrad as torch

FIXTURE = np.load(Path(__file__).parent / "fixtures" / "transformer_torch.npz")
CONFIGS = {
    "post_relu": dict(batch_first=False, norm_first=False, activation="relu"),
    "pre_gelu_batch_first": dict(batch_first=True, norm_first=True, activation="gelu"),
}


def _model(name):
    model = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
                                 dim_feedforward=16, dropout=0.0, dtype=torch.float64,
                                 **CONFIGS[name]).eval()
    prefix = f"{name}/param/"
    state = {k[len(prefix):]: torch.from_numpy(FIXTURE[k]) for k in FIXTURE.files
             if k.startswith(prefix)}
    assert set(state) == set(model.state_dict()), "state dict keys differ from PyTorch's"
    model.load_state_dict(state)
    return model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_and_gradients_match_pytorch(name):
    model = _model(name)
    src = torch.from_numpy(FIXTURE[f"{name}/src"].copy()).requires_grad_()
    tgt = torch.from_numpy(FIXTURE[f"{name}/tgt"].copy()).requires_grad_()
    pad = torch.from_numpy(FIXTURE[f"{name}/src_pad"])
    mask = torch.nn.Transformer.generate_square_subsequent_mask(tgt.shape[1 if CONFIGS[name]["batch_first"] else 0],
                                                                dtype=torch.float64)
    out = model(src, tgt, tgt_mask=mask, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    np.testing.assert_allclose(out.detach().numpy(), FIXTURE[f"{name}/out"], rtol=1e-10, atol=1e-12)
    weight = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * weight).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), FIXTURE[f"{name}/src_grad"], rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(tgt.grad.numpy(), FIXTURE[f"{name}/tgt_grad"], rtol=1e-8, atol=1e-11)


def test_generate_square_subsequent_mask():
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4)
    expected = np.triu(np.full((4, 4), -np.inf), 1)
    np.testing.assert_array_equal(mask.numpy(), np.where(np.isnan(expected), 0, expected))
    assert mask.dtype == torch.float32
    assert torch.nn.Transformer.generate_square_subsequent_mask(2, dtype=torch.float64).dtype == \
        torch.float64


@torch.no_grad()
def test_causal_decoder_output_does_not_depend_on_later_targets():
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    decoder = torch.nn.TransformerDecoder(layer, 2, norm=torch.nn.LayerNorm(8)).eval()
    assert len(decoder.layers) == 2 and decoder.layers[0] is not decoder.layers[1]
    memory = torch.randn(5, 2, 8)
    tgt = torch.randn(4, 2, 8)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4)
    out = decoder(tgt, memory, tgt_mask=mask)
    changed = tgt.clone()
    changed[3] = 100.0
    out2 = decoder(changed, memory, tgt_mask=mask)
    np.testing.assert_allclose(out2[:3].numpy(), out[:3].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out2[3].numpy(), out[3].numpy())
    # is_causal gives the same as the explicit mask
    np.testing.assert_allclose(decoder(tgt, memory, tgt_mask=mask, tgt_is_causal=True).numpy(),
                               out.numpy(), rtol=1e-6)


@torch.no_grad()
def test_padded_memory_positions_are_ignored():
    torch.manual_seed(1)
    layer = torch.nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                             batch_first=True).eval()
    memory = torch.randn(2, 5, 8)
    pad = torch.tensor([[False, False, False, True, True]] * 2)
    tgt = torch.randn(2, 3, 8)
    out = layer(tgt, memory, memory_key_padding_mask=pad)
    memory2 = memory.clone()
    memory2[:, 3:] = -50.0
    np.testing.assert_allclose(layer(tgt, memory2, memory_key_padding_mask=pad).numpy(),
                               out.numpy(), rtol=1e-5, atol=1e-6)


def test_transformer_trains_and_subclasses_like_word_language_model():
    class TransformerModel(torch.nn.Transformer):  # as PyTorch's example subclasses it
        def __init__(self, ntoken, ninp):
            super().__init__(d_model=ninp, nhead=2, dim_feedforward=16, num_encoder_layers=1,
                             num_decoder_layers=1, dropout=0.0)
            self.embed = torch.nn.Embedding(ntoken, ninp)
            self.head = torch.nn.Linear(ninp, ntoken)

        def forward(self, src, tgt):
            mask = self.generate_square_subsequent_mask(tgt.shape[0])
            out = super().forward(self.embed(src), self.embed(tgt), tgt_mask=mask)
            return self.head(out)

    torch.manual_seed(0)
    model = TransformerModel(7, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    src = torch.randint(0, 7, (6, 4))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        logits = model(src, src)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), src.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.5


def test_shape_errors():
    model = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                 dim_feedforward=16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(torch.rand(5, 3, 8), torch.rand(4, 2, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        model(torch.rand(5, 3, 8), torch.rand(4, 3, 6))
