"""``tracegrad.onnx``: importable, so scripts that ``import torch.onnx`` (and never export)
run unchanged; exporting is not supported yet and says so.

>>> import tracegrad.onnx
>>> tracegrad.onnx.is_in_onnx_export()
False
"""
from __future__ import annotations

__all__ = ["export", "dynamo_export", "is_in_onnx_export", "OnnxExporterError"]


class OnnxExporterError(RuntimeError):
    """Raised by every export entry point: tracegrad cannot write ONNX models."""


def _unsupported(what: str) -> OnnxExporterError:
    return OnnxExporterError(
        f"tracegrad does not support ONNX export yet ({what} is PyTorch's "
        f"torch.onnx.export API). Save the weights with tracegrad.save(model.state_dict(), "
        f"path, format='torch') and export from PyTorch, or use tracegrad.compile for speed.")


def export(model, args=(), f=None, *unused_args, **unused_kwargs):
    """Not supported: raises ``OnnxExporterError`` naming ``torch.onnx.export``."""
    raise _unsupported("tracegrad.onnx.export")


def dynamo_export(model, *args, **kwargs):
    raise _unsupported("tracegrad.onnx.dynamo_export")


def is_in_onnx_export() -> bool:
    return False
