"""tracegrad.onnx: importable, and export says clearly that it is not supported."""
import pytest

import tracegrad as torch
import tracegrad.onnx


def test_export_raises_a_clear_error_naming_torch_onnx_export(tmp_path):
    model = torch.nn.Linear(2, 1)
    with pytest.raises(tracegrad.onnx.OnnxExporterError,
                       match="tracegrad does not support ONNX export yet.*torch.onnx.export"):
        torch.onnx.export(model, (torch.randn(1, 2),), str(tmp_path / "m.onnx"),
                          input_names=["x"], opset_version=17)
    assert not (tmp_path / "m.onnx").exists()
    assert isinstance(tracegrad.onnx.OnnxExporterError("x"), RuntimeError)
    assert torch.onnx.is_in_onnx_export() is False
