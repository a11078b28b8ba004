"""nn.Transformer (encoder-decoder), TransformerDecoderLayer and TransformerDecoder against
PyTorch 2.13: a small model's state dict, output and every parameter's gradient, recorded
in tests/fixtures/torch_transformer.npz (remade by make_transformer_fixture.py), with a
causal target mask and padding masks."""
from pathlib import Path

import numpy as np
import pytest

import tracegrad as torch
import tracegrad.nn as nn

FIXTURE = Path(__file__).parent / "fixtures" / "torch_transformer.npz"


def _model_and_inputs():
    data = np.load(FIXTURE)
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                           dim_feedforward=16, dropout=0.0)
    state = {k[len("param/"):]: torch.from_numpy(data[k].copy()) for k in data.files
             if k.startswith("param/")}
    model.load_state_dict(state)  # strict: PyTorch's parameter names, one for one
    return model, data


def test_output_and_gradients_match_pytorch():
    model, data = _model_and_inputs()
    mask = torch.from_numpy(data["src_key_padding_mask"].copy())
    out = model(torch.from_numpy(data["src"].copy()), torch.from_numpy(data["tgt"].copy()),
                tgt_mask=nn.Transformer.generate_square_subsequent_mask(4),
                src_key_padding_mask=mask, memory_key_padding_mask=mask)
    np.testing.assert_allclose(out.detach().numpy(), data["out"], rtol=1e-4, atol=1e-5)
    (out * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), data["grad/" + name], rtol=1e-3, atol=1e-5,
                                   err_msg=name)


def test_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(3)
    assert m.dtype == torch.float32
    expected = np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]], np.float32)
    np.testing.assert_array_equal(m.numpy(), expected)
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=torch.float64).dtype == \
        torch.float64


def test_decoder_layer_batch_first_and_norm_first_agree_with_sequence_first():
    torch.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, norm_first=True)
    first = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, norm_first=True,
                                       batch_first=True)
    first.load_state_dict(layer.state_dict())
    tgt, mem = torch.randn(4, 3, 8), torch.randn(6, 3, 8)
    a = layer(tgt, mem)
    b = first(tgt.transpose(0, 1), mem.transpose(0, 1)).transpose(0, 1)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    stack = nn.TransformerDecoder(layer, num_layers=2, norm=nn.LayerNorm(8))
    assert len(stack.layers) == 2 and stack.layers[0] is not layer
    assert tuple(stack(tgt, mem).shape) == (4, 3, 8)


def test_bad_shapes_name_the_problem():
    model = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                           dim_feedforward=16)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        model(torch.zeros(5, 2, 8), torch.zeros(4, 3, 8))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal"):
        model(torch.zeros(5, 2, 8), torch.zeros(4, 2, 6))
